"""In-process copies of the embedded model: N llama.cpp instances of one file, each with its own lock and threads,
so N calls run at once where the cores allow (a single instance serializes every call behind its one lock)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

__all__ = ["ReplicaPool", "default_replicas", "threads_per_replica"]

T = TypeVar("T")


def default_replicas() -> int:
    """`MICROPROMPTS_REPLICAS` (at least 1), else 1: one instance, as before replicas existed."""
    raw = os.environ.get("MICROPROMPTS_REPLICAS", "").strip()
    return max(1, int(raw)) if raw.isdigit() else 1


def threads_per_replica(replicas: int, cores: int | None = None) -> int:
    """`MICROPROMPTS_THREADS`, else the cores but one shared among the replicas (at least one thread each):
    llama.cpp's spinning threads collapse when the machine is oversubscribed."""
    env = os.environ.get("MICROPROMPTS_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    cores = cores if cores is not None else (os.cpu_count() or 2)
    return max(1, (cores - 1) // max(1, replicas))


class ReplicaPool(Generic[T]):
    """Up to `size` instances made by `build`, on demand; `borrow` hands a free one to one call at a time and waits
    while all are busy. `close` frees the idle instances (at exit)."""

    def __init__(self, build: Callable[[], T], size: int, close: Callable[[T], None] | None = None) -> None:
        if size < 1:
            raise ValueError(f"a replica pool needs at least 1 replica, not {size}")
        self.size = size
        self._build = build
        self._close = close
        self._free: list[T] = []
        self._made = 0
        self._ready = threading.Condition()

    @property
    def made(self) -> int:
        """How many instances exist (built on first need, never more than `size`)."""
        with self._ready:
            return self._made

    @contextmanager
    def borrow(self) -> Iterator[T]:
        """A free instance for the block's duration (built if none is free and fewer than `size` exist)."""
        with self._ready:
            while not self._free and self._made >= self.size:
                self._ready.wait()
            item = self._free.pop() if self._free else None
            if item is None:
                self._made += 1  # this call builds it, outside the lock: a load takes seconds
        if item is None:
            try:
                item = self._build()
            except BaseException:
                with self._ready:
                    self._made -= 1
                    self._ready.notify()
                raise
        try:
            yield item
        finally:
            with self._ready:
                self._free.append(item)
                self._ready.notify()

    def close(self) -> None:
        """Free the idle instances (best effort: a failing close does not stop the others)."""
        with self._ready:
            items, self._free = self._free, []
            self._made -= len(items)
        for item in items:
            if self._close is not None:
                try:
                    self._close(item)
                except Exception:  # noqa: BLE001 - best effort at exit
                    pass
