"""A chat model that answers from a script and records every call, for tests of flows and nodes."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from pydantic import Field, SkipValidation

from microprompts.testing.recording import RecordingChatModel

Reply = str | BaseException | dict[str, Any]
"""One scripted reply: the text, a dict (sent as its JSON), or an exception (raised)."""

Script = Sequence[Reply] | Callable[[list[BaseMessage]], Reply]
"""The replies in order, or a function of the messages that gives each reply."""


class ScriptedChatModel(RecordingChatModel):
    """Replies from a list, in order (or from ``replies(messages)``), recording every call.

    A list item may be a string (the reply), a dict (dumped as JSON), or an exception instance (raised, to
    test retries and errors). A function may return a string or a dict, or raise. When the list runs out
    the model raises ``AssertionError`` unless ``cycle=True`` (start over) or ``repeat_last=True``.
    ``usage={"input_tokens": 7, "output_tokens": 3}`` sets the usage metadata of every reply (else a
    rough count; ``report_usage=False`` reports none); ``finish_reason`` sets the reply's finish reason.
    Each call is in ``model.calls``: ``calls[0].system``, ``.user``, ``.temperature``, ``.response_format``.
    """

    replies: SkipValidation[Script] = Field(default_factory=list)
    cycle: bool = False
    repeat_last: bool = False

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _next(self, index: int, messages: list[BaseMessage]) -> Reply:
        if callable(self.replies):
            return self.replies(messages)
        items = list(self.replies)
        if index < len(items):
            return items[index]
        if items and self.cycle:
            return items[index % len(items)]
        if items and self.repeat_last:
            return items[-1]
        raise AssertionError(f"ScriptedChatModel {self.name!r} ran out of replies (call {index + 1})")

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        index = self._record(messages, kwargs)
        reply = self._next(index, messages)
        if isinstance(reply, BaseException):
            raise reply
        text = json.dumps(reply) if isinstance(reply, dict) else str(reply)
        return self._result(text, messages)
