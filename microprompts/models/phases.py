"""Where a run's wall time goes: code marks its phases (``with phase("rendering"):``) and a recording splits the
wall time between them.

The split is of wall time, not of summed thread time: at each moment the time goes to the highest-priority phase
some thread is in (`PHASES` order: a model call in flight first), else to ``other``, so the shares add up to 1 however
many rows run at once, and rendering that overlaps a model call is not counted as the time it did not cost. Nothing is
measured while no recording is open: ``phase()`` is then one attribute read and a shared no-op context manager.
"""

from __future__ import annotations

import threading
import time
import weakref
from types import TracebackType
from typing import Final, Literal

__all__ = ["OTHER", "PHASES", "Phase", "PhaseRecording", "phase", "shares_text"]

Phase = Literal["model", "waiting", "caching", "journaling", "mutating", "rendering", "parsing"]
PHASES: Final[tuple[Phase, ...]] = ("model", "waiting", "caching", "journaling", "mutating", "rendering", "parsing")
"""The phases, highest priority first: inside a model call; waiting to retry one; the call cache; the run journal;
proposing children; rendering prompts; parsing replies."""
OTHER: Final = "other"


class _Clock:
    """The process's phase accumulators: how many threads are in each phase, and the wall seconds given to each."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.listeners = 0  # open recordings; 0: nothing is measured
        self.active: dict[str, int] = dict.fromkeys(PHASES, 0)
        self.seconds: dict[str, float] = dict.fromkeys((*PHASES, OTHER), 0.0)
        self.last = time.perf_counter()
        self.closing: list[int] = []  # closes not yet counted (see `close`); list.append needs no lock

    def _flush(self, now: float) -> None:
        """Give the seconds since the last change to the phase that held them (the lock is held)."""
        holder = next((p for p in PHASES if self.active[p]), OTHER)
        self.seconds[holder] += now - self.last
        self.last = now

    def change(self, name: str, delta: int) -> None:
        """A thread enters (+1) or leaves (-1) phase `name`."""
        with self.lock:
            self._settle()
            self._flush(time.perf_counter())
            self.active[name] += delta

    def snapshot(self) -> dict[str, float]:
        """The seconds given to each phase so far (and to ``other``)."""
        with self.lock:
            self._settle()
            if self.listeners:
                self._flush(time.perf_counter())
            return dict(self.seconds)

    def listen(self, delta: int) -> None:
        """A recording opens (+1) or closes (-1); the first one restarts the clock, so idle time is not counted."""
        with self.lock:
            self._settle()
            self._listen(delta)

    def _listen(self, delta: int) -> None:
        """`listen`'s work (the lock is held)."""
        if self.listeners == 0 and delta > 0:
            self.last = time.perf_counter()
        elif self.listeners > 0:
            self._flush(time.perf_counter())
        self.listeners = max(0, self.listeners + delta)

    def close(self) -> None:
        """A recording closes without waiting for the lock: a garbage-collected recording's finalizer can run inside
        this thread's own locked section (an allocation there starts a collection), where waiting would deadlock; the
        close is then counted by the next call that holds the lock."""
        self.closing.append(-1)
        if self.lock.acquire(blocking=False):
            try:
                self._settle()
            finally:
                self.lock.release()

    def _settle(self) -> None:
        """Count the closes `close` could not (the lock is held)."""
        while self.closing:
            self._listen(self.closing.pop())


_CLOCK = _Clock()


class _Span:
    """One thread's stay in a phase; counted only if a recording was open when it began."""

    __slots__ = ("counted", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.counted = False

    def __enter__(self) -> None:
        if _CLOCK.listeners:
            _CLOCK.change(self.name, 1)
            self.counted = True

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.counted:
            self.counted = False
            _CLOCK.change(self.name, -1)


class _Idle:
    """The shared no-op stand-in for a span while nothing records."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        return None


_IDLE = _Idle()


def phase(name: Phase) -> _Span | _Idle:
    """A context manager marking the block as phase `name` for every open recording (a no-op when none is)."""
    return _Span(name) if _CLOCK.listeners else _IDLE


class PhaseRecording:
    """The wall time split by phase from `start()` to `stop()` (a run's). Recordings may overlap (runs in one
    process): each sees every thread's phases. One never stopped stops when it is garbage collected."""

    def __init__(self) -> None:
        self._start = _CLOCK.snapshot()
        self._end: dict[str, float] | None = None
        self._finalizer = weakref.finalize(self, _CLOCK.close)

    @classmethod
    def start(cls) -> PhaseRecording:
        """Open a recording now."""
        _CLOCK.listen(1)
        return cls()

    def stop(self) -> dict[str, float]:
        """Close the recording (once; later calls return the same figures) and return `seconds()`."""
        if self._end is None:
            self._end = _CLOCK.snapshot()
            self._finalizer()
        return self.seconds()

    def seconds(self) -> dict[str, float]:
        """Wall seconds per phase (``other``: in none) since the start, up to the stop or now."""
        end = self._end if self._end is not None else _CLOCK.snapshot()
        return {name: max(0.0, end[name] - self._start[name]) for name in (*PHASES, OTHER)}

    def shares(self) -> dict[str, float]:
        """Each phase's share of the wall time (``model`` first, ``other`` last), adding up to 1; all 0 when no
        time has passed."""
        seconds = self.seconds()
        wall = sum(seconds.values())
        return {name: (value / wall if wall > 0 else 0.0) for name, value in seconds.items()}


def shares_text(shares: dict[str, float]) -> str:
    """``model 96.1%, rendering 1.2%, ..., other 2.0%``: the phases with any time, biggest first, ``other`` last."""
    named = sorted(((v, k) for k, v in shares.items() if k != OTHER and v > 0), key=lambda vk: -vk[0])
    parts = [f"{k} {v:.1%}" for v, k in named]
    parts.append(f"{OTHER} {shares.get(OTHER, 0.0):.1%}")
    return ", ".join(parts)
