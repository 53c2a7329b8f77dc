"""What the chat-model doubles share: the record of one call, thread-safe recording, usage metadata on replies,
and a model caller that records the schema each request sends."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

from microprompts.models import Completion, ModelCaller

_COUNTER = itertools.count(1)


@dataclass
class Call:
    """One call a double received: the messages and the keyword arguments the caller passed."""

    messages: list[BaseMessage]
    kwargs: dict[str, Any]

    @property
    def system(self) -> str:
        """The system prompt ("" when none)."""
        return next((str(m.content) for m in self.messages if m.type == "system"), "")

    @property
    def user(self) -> str:
        """The first user turn ("" when none)."""
        return next((str(m.content) for m in self.messages if m.type == "human"), "")

    @property
    def response_format(self) -> Any:
        """The ``response_format`` the caller asked for (None when it asked for free text)."""
        return self.kwargs.get("response_format")

    @property
    def temperature(self) -> Any:
        """The sampling temperature the caller passed (None when it passed none)."""
        return self.kwargs.get("temperature")

    @property
    def max_tokens(self) -> Any:
        """The reply-length limit the caller passed (None when it passed none)."""
        return self.kwargs.get("max_tokens")

    @property
    def seed(self) -> Any:
        """The sample seed the caller passed (None when it passed none)."""
        return self.kwargs.get("seed")


class RecordingChatModel(BaseChatModel):
    """Base of the doubles: a stable identity, thread-safe call recording, usage metadata on replies.

    ``usage={"input_tokens": 7, "output_tokens": 3}`` sets the usage metadata of every reply (else a rough
    count from the text; ``report_usage=False`` reports none); ``finish_reason`` sets the reply's finish reason.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str | None = Field(default_factory=lambda: f"fake-{next(_COUNTER)}")
    usage: dict[str, int] | None = None
    report_usage: bool = True
    finish_reason: str = "stop"
    _calls: list[Call] = PrivateAttr(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def calls(self) -> list[Call]:
        """Every call so far, in order of arrival."""
        with self._lock:
            return list(self._calls)

    @property
    def call_count(self) -> int:
        """How many calls the double has received."""
        with self._lock:
            return len(self._calls)

    def reset_calls(self) -> None:
        """Forget the calls recorded so far (a scripted model's next reply is its first again)."""
        with self._lock:
            self._calls.clear()

    def identity(self) -> str:
        """The cache-key identity: stable for one configuration, distinct between doubles by default."""
        return f"{self._llm_type}:{self.name}"

    def _record(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> int:
        with self._lock:
            self._calls.append(Call(list(messages), dict(kwargs)))
            return len(self._calls) - 1

    def _result(self, text: str, messages: list[BaseMessage]) -> ChatResult:
        meta = self.usage
        if meta is None:  # a plausible count, so usage accounting has something to add up
            prompt = sum(len(str(m.content)) for m in messages) // 4 + 1
            meta = {"input_tokens": prompt, "output_tokens": len(text) // 4 + 1}
        meta = {**meta, "total_tokens": meta.get("input_tokens", 0) + meta.get("output_tokens", 0)}
        message = AIMessage(
            content=text,
            usage_metadata=meta if self.report_usage else None,
            response_metadata={"finish_reason": self.finish_reason},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


class SchemaRecordingCaller(ModelCaller):
    """A ModelCaller with no cache that records the schema each call sends (None for free-text replies)."""

    def __init__(self) -> None:
        """A caller with no cache and no retry delay, and no schemas recorded yet."""
        super().__init__(cache=None, base_delay=0.0)
        self.schemas: list[dict[str, Any] | None] = []

    def complete(self, model: BaseChatModel, messages: list[BaseMessage], **kwargs: Any) -> Completion:
        """Record the request's schema, then complete it as a ModelCaller does."""
        self.schemas.append(kwargs.get("schema"))
        return super().complete(model, messages, **kwargs)
