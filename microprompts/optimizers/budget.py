"""The optimizer's budget: task-model calls, optimizer-model calls, tokens and seconds, charged deterministically.

A call is charged the first time this run makes that exact request (model, parameters, messages, schema, sample),
whether the cache answers it or not: on a cold cache that is exactly the paid calls, and it makes a run's course
independent of how warm the cache is, so a resumed or repeated run stops at the same point as the first one.
Repeating a request within a run is free. The calls limit is checked before each charge, so it never overshoots;
tokens are known only after a reply, so they overshoot by at most the calls in flight.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from microprompts.models import BudgetExceeded, CallCache, Completion, ModelCaller, completion_key
from microprompts.models.phases import PhaseRecording

__all__ = ["Budget", "BudgetExceeded", "BudgetTracker", "BudgetedCaller", "Charge"]

Role = Literal["task", "optimizer"]
_MODEL: dict[Role, str] = {"task": "task-model", "optimizer": "optimizer-model"}


@dataclass(frozen=True)
class Budget:
    """Limits for one optimization run; None means unlimited. `tokens` counts both roles' tokens."""

    calls: int | None = None
    optimizer_calls: int | None = None
    tokens: int | None = None
    seconds: float | None = None

    def describe(self) -> str:
        """A short human description."""
        parts = [f"{v} {k.replace('_', ' ')}" for k, v in vars(self).items() if v is not None]
        return ", ".join(parts) or "unlimited"


@dataclass
class Charge:
    """What one piece of work charged: calls and tokens per role, and the request keys it charged first."""

    task_calls: int = 0
    task_tokens: int = 0
    optimizer_calls: int = 0
    optimizer_tokens: int = 0
    keys: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """As stored in the run directory."""
        return dict(vars(self))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Charge:
        """Back from the run directory."""
        return cls(**data)


class BudgetTracker:
    """Charges requests against a Budget; thread-safe; raises BudgetExceeded before a call that would overrun."""

    def __init__(self, budget: Budget, clock: Callable[[], float] = time.monotonic) -> None:
        self.budget = budget
        self.total = Charge()
        self.exhausted: set[Role] = set()
        self.reason: str | None = None  # why the budget last refused a call
        self.exempt = False
        self.seconds_offset = 0.0
        self._clock = clock
        self._started = clock()
        self._seen: dict[Role, set[str]] = {"task": set(), "optimizer": set()}
        self._lock = threading.Lock()
        self._scope: Charge | None = None
        self.phases = PhaseRecording.start()  # where this process's part of the run spends its wall time

    # --- time ------------------------------------------------------------------------------------
    def seconds(self) -> float:
        """Seconds spent by this run (including earlier processes of a resumed run)."""
        return self.seconds_offset + self._clock() - self._started

    def check_time(self) -> None:
        """Raise BudgetExceeded when the seconds budget is spent (marks the task role exhausted)."""
        limit = self.budget.seconds
        if limit is not None and not self.exempt and self.seconds() >= limit:
            self.exhausted.add("task")
            self.reason = f"the budget of {limit:g} seconds is spent"
            raise BudgetExceeded(self.reason)

    # --- charging --------------------------------------------------------------------------------
    def _calls(self, role: Role) -> tuple[int, int | None]:
        """Calls charged so far to `role`, and its limit (None: unlimited)."""
        t, b = self.total, self.budget
        return (t.task_calls, b.calls) if role == "task" else (t.optimizer_calls, b.optimizer_calls)

    def _limit_hit(self, role: Role) -> str | None:
        b, t = self.budget, self.total
        calls, limit = self._calls(role)
        if limit is not None and calls >= limit:
            return f"the budget of {limit} {_MODEL[role]} calls is spent"
        if b.tokens is not None and t.task_tokens + t.optimizer_tokens >= b.tokens:
            return f"the budget of {b.tokens} tokens is spent"
        return None

    def calls_left(self, role: Role = "task") -> int | None:
        """New requests the budget can still take for `role`; None when its calls are unlimited (or exempt)."""
        spent, limit = self._calls(role)
        return None if limit is None or self.exempt else max(0, limit - spent)

    def shortfall(self, calls: int, what: str, role: Role = "task") -> str | None:
        """Why `calls` new requests for `what` do not fit in what is left for `role`; None when they do."""
        left = self.calls_left(role)
        if left is None or left >= calls:
            return None
        return f"{left} {_MODEL[role]} call{'' if left == 1 else 's'} left, fewer than the {calls} {what}"

    def require(self, calls: int, what: str, role: Role = "task") -> None:
        """Raise BudgetExceeded, before any of it is spent, when fewer than `calls` new requests are left for
        `what`: work that cannot finish cannot change the result, so it is not started."""
        reason = self.shortfall(calls, what, role)
        if reason is not None:
            self.exhausted.add(role)
            self.reason = reason
            raise BudgetExceeded(reason)

    def reserve(self, role: Role, key: str) -> bool:
        """Charge one call for a request first seen now (True), or nothing for a repeat (False); raises
        BudgetExceeded when the budget cannot take a new request."""
        with self._lock:
            if key in self._seen[role]:
                return False
            reason = None if self.exempt else self._limit_hit(role)
            if reason:
                self.exhausted.add(role)
                self.reason = reason
                raise BudgetExceeded(reason)
            self._seen[role].add(key)
            self._add(role, calls=1, key=key)
            return True

    def add_tokens(self, role: Role, tokens: int) -> None:
        """Charge the tokens of a request charged by `reserve`."""
        with self._lock:
            self._add(role, tokens=tokens)

    def _add(self, role: Role, calls: int = 0, tokens: int = 0, key: str | None = None) -> None:
        for charge in (self.total, self._scope):
            if charge is None:
                continue
            if role == "task":
                charge.task_calls += calls
                charge.task_tokens += tokens
            else:
                charge.optimizer_calls += calls
                charge.optimizer_tokens += tokens
            if key is not None and charge is self._scope:
                charge.keys.append(f"{role[0]}:{key}")

    @contextmanager
    def scope(self) -> Iterator[Charge]:
        """Collect what is charged inside the block (one piece of work at a time: evaluations are sequential)."""
        with self._lock:
            self._scope = Charge()
            scope = self._scope
        try:
            yield scope
        finally:
            with self._lock:
                self._scope = None

    def replay(self, charge: Charge) -> None:
        """Charge again what a recorded piece of work charged, so a resumed run's budget lines up."""
        with self._lock:
            for tagged in charge.keys:
                role: Role = "task" if tagged.startswith("t:") else "optimizer"
                self._seen[role].add(tagged[2:])
            self.total.task_calls += charge.task_calls
            self.total.task_tokens += charge.task_tokens
            self.total.optimizer_calls += charge.optimizer_calls
            self.total.optimizer_tokens += charge.optimizer_tokens

    @contextmanager
    def exempted(self) -> Iterator[None]:
        """Charge without limits inside the block (the final test-split figures)."""
        previous, self.exempt = self.exempt, True
        try:
            yield
        finally:
            self.exempt = previous


class BudgetedCaller(ModelCaller):
    """A ModelCaller that charges each request to a BudgetTracker and also caches replies cut off by max_tokens,
    so a resumed run never pays for a request twice."""

    keys_requests: ClassVar[bool] = True  # every request is charged under its key, with or without a cache

    def __init__(
        self,
        cache: CallCache,
        tracker: BudgetTracker,
        role: Role,
        before_call: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> None:
        def check() -> None:
            tracker.check_time()
            if before_call is not None:
                before_call()

        super().__init__(cache=cache, before_call=check, **kwargs)
        self.tracker = tracker
        self.role: Role = role

    def _reserve(self, key: str) -> bool:
        """A scoring request (calibrated labels) charged like a completion: once per key, BudgetExceeded first."""
        return self.tracker.reserve(self.role, key)

    def _charge_tokens(self, tokens: int) -> None:
        self.tracker.add_tokens(self.role, tokens)

    def _complete_keyed(self, key: str, model: BaseChatModel, messages: list[BaseMessage], **kwargs: Any) -> Completion:
        """As ModelCaller's, charged to the budget under the request's cache key (BudgetExceeded before a request
        it cannot take); a reply cut off by max_tokens is cached under that key too."""
        new = self.tracker.reserve(self.role, key)
        done = super()._complete_keyed(key, model, messages, **kwargs)
        if new:
            self.tracker.add_tokens(self.role, done.prompt_tokens + done.completion_tokens)
        if not done.cached and done.finish_reason == "length" and self.cache is not None:
            self.cache.put(key, done.model_dump(exclude={"cached", "seconds", "logprobs"}))
        return done


# The key a request is charged and cached under, by its old name (tests/optimizers/test_budget.py imports it).
call_key = completion_key
