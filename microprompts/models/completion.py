"""A model's reply with its cost: what `ModelCaller.complete` returns and the cache keeps."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from microprompts.models.usage import Usage

__all__ = ["Completion"]


class Completion(BaseModel):
    """A model's reply text with its cost; `cached` replies cost nothing."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    cached: bool = False
    seconds: float = 0.0
    logprobs: Any = None  # an OpenAI-style `logprobs.content` list, when the request asked for one (not cached)

    def usage(self) -> Usage:
        """This completion as a Usage record (cache hits count as cached calls only)."""
        if self.cached:
            return Usage(cached_calls=1)
        return Usage(
            calls=1,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            seconds=self.seconds,
        )
