"""A chat model that takes a fixed time per call and answers a fixed reply: throughput benchmarks of executors
measure rows per second against a known per-call latency (`LatencyChatModel(reply=..., latency=0.2)`)."""

from __future__ import annotations

import time
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

__all__ = ["LatencyChatModel"]


class LatencyChatModel(BaseChatModel):
    """Sleeps `latency` seconds per call (like a model busy on its own hardware), then replies `reply`."""

    reply: str
    latency: float = 0.2
    prompt_tokens: int = 200
    completion_tokens: int = 30

    @property
    def _llm_type(self) -> str:
        return "latency-fake"

    def identity(self) -> str:
        """Stable across processes: the reply and the latency."""
        return f"latency:{self.latency}:{self.reply}"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        time.sleep(self.latency)
        usage = {
            "input_tokens": self.prompt_tokens,
            "output_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }
        message = AIMessage(content=self.reply, usage_metadata=usage, response_metadata={"finish_reason": "stop"})
        return ChatResult(generations=[ChatGeneration(message=message)])
