"""The embedded model's in-process replica pool: a free instance per call, built on demand, never more than asked."""

from __future__ import annotations

import threading

import pytest

from microprompts.models.replicas import ReplicaPool, threads_per_replica


def test_concurrent_calls_get_distinct_instances_up_to_the_size() -> None:
    built: list[int] = []
    pool = ReplicaPool(lambda: built.append(len(built)) or len(built), size=2)
    both_in = threading.Barrier(2, timeout=30)
    seen: list[int] = []

    def call() -> None:
        with pool.borrow() as item:
            seen.append(item)
            both_in.wait()  # two calls hold an instance at the same time: impossible behind one lock

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(seen) == [1, 2] and pool.made == 2
    for _ in range(5):  # later calls reuse them
        with pool.borrow():
            pass
    assert pool.made == 2 and len(built) == 2


def test_a_third_call_waits_for_a_free_instance() -> None:
    pool = ReplicaPool(object, size=2)
    held = [pool.borrow(), pool.borrow()]
    items = [h.__enter__() for h in held]
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(pool.borrow().__enter__()))
    waiter.start()
    waiter.join(timeout=0.2)
    assert not got and pool.made == 2  # all busy: it waits instead of building a third
    held[0].__exit__(None, None, None)
    waiter.join(timeout=30)
    assert got == [items[0]]


def test_a_failed_build_frees_its_slot_and_close_frees_idle_instances() -> None:
    closed: list[object] = []
    attempts = iter([RuntimeError("no file"), "a"])

    def build() -> str:
        value = next(attempts)
        if isinstance(value, Exception):
            raise value
        return value

    pool = ReplicaPool(build, size=1, close=closed.append)
    with pytest.raises(RuntimeError), pool.borrow():
        pass
    with pool.borrow() as item:
        assert item == "a"
    pool.close()
    assert closed == ["a"] and pool.made == 0
    with pytest.raises(ValueError):
        ReplicaPool(object, size=0)


def test_threads_are_shared_among_replicas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MICROPROMPTS_THREADS", raising=False)
    assert threads_per_replica(1, cores=2) == 1
    assert threads_per_replica(2, cores=2) == 1
    assert threads_per_replica(4, cores=16) == 3
    monkeypatch.setenv("MICROPROMPTS_THREADS", "2")
    assert threads_per_replica(2, cores=2) == 2
