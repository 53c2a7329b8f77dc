"""Usage accounting: model calls, cache hits, tokens and seconds, per node and per run."""

from __future__ import annotations

import threading

from pydantic import BaseModel


class Usage(BaseModel):
    """Counts for a set of model calls; `calls` are paid calls, `cached_calls` were served from the cache."""

    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    failures: int = 0

    def __add__(self, other: Usage) -> Usage:
        # Every model call adds usage four times. The validating constructor with every field given is twice as fast
        # as model_construct (which looks each field's aliases up), and sums of valid counts pass it unchanged.
        return Usage(
            calls=self.calls + other.calls,
            cached_calls=self.cached_calls + other.cached_calls,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            seconds=self.seconds + other.seconds,
            failures=self.failures + other.failures,
        )

    def __sub__(self, other: Usage) -> Usage:
        """What was spent since `other` (a snapshot of the same running total)."""
        return Usage(
            calls=self.calls - other.calls,
            cached_calls=self.cached_calls - other.cached_calls,
            prompt_tokens=self.prompt_tokens - other.prompt_tokens,
            completion_tokens=self.completion_tokens - other.completion_tokens,
            seconds=self.seconds - other.seconds,
            failures=self.failures - other.failures,
        )

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens of paid calls."""
        return self.prompt_tokens + self.completion_tokens


class UsageMeter:
    """Thread-safe running total of usage, with a breakdown per node name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = Usage()
        self.by_node: dict[str, Usage] = {}

    def add(self, usage: Usage, node: str | None = None) -> None:
        """Add one call's (or a batch's) usage, under `node` when given."""
        with self._lock:
            self.total = self.total + usage
            if node is not None:
                self.by_node[node] = self.by_node.get(node, Usage()) + usage

    def snapshot(self) -> Usage:
        """A copy of the total so far."""
        with self._lock:
            return self.total.model_copy()
