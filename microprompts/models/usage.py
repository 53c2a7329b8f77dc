"""Usage accounting: model calls, cache hits, tokens and seconds, per node and per run."""

from __future__ import annotations

import threading
from typing import Any

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
        # Sums per row of an evaluation (the meter keeps plain numbers instead). The validating constructor with every
        # field given is twice as fast as model_construct (which looks each field's aliases up).
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
    """Thread-safe running total of usage, with a breakdown per node name. Every model call adds to it: the sums are
    kept as plain numbers (a Usage is made when one is read), a third of the time of adding Usage records."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = [0, 0, 0, 0, 0.0, 0]
        self._nodes: dict[str, list[Any]] = {}

    def add(self, usage: Usage, node: str | None = None) -> None:
        """Add one call's (or a batch's) usage, under `node` when given."""
        u = usage
        self.add_counts((u.calls, u.cached_calls, u.prompt_tokens, u.completion_tokens, u.seconds, u.failures), node)

    def add_counts(self, values: tuple[int, int, int, int, float, int], node: str | None = None) -> None:
        """`add` from the counts alone, in Usage's field order (a paid call need not become a Usage first)."""
        with self._lock:
            sums = [self._total] if node is None else [self._total, self._nodes.setdefault(node, [0, 0, 0, 0, 0.0, 0])]
            for acc in sums:
                for i, v in enumerate(values):
                    acc[i] += v

    @property
    def total(self) -> Usage:
        """The total so far (a record of its own: later calls do not change it)."""
        with self._lock:
            return _usage(self._total)

    @property
    def by_node(self) -> dict[str, Usage]:
        """The usage so far of each node named when adding."""
        with self._lock:
            return {node: _usage(acc) for node, acc in self._nodes.items()}

    def snapshot(self) -> Usage:
        """A copy of the total so far."""
        return self.total


def _usage(acc: list[Any]) -> Usage:
    calls, cached_calls, prompt_tokens, completion_tokens, seconds, failures = acc
    return Usage(
        calls=calls,
        cached_calls=cached_calls,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        seconds=seconds,
        failures=failures,
    )
