"""The run store: runs and feedback round-trip through SQLite, across reopen and threads."""

from __future__ import annotations

import math
import threading

import pytest

from microprompts.serve import RunRecord, RunStore, UnknownRunError


def _run(run_id: str, **changes: object) -> RunRecord:
    data: dict = {
        "run_id": run_id,
        "flow": "seats",
        "artifact_hash": "sha256:abc",
        "inputs": {"q": "é ✓"},
        "outputs": {"a": [1, 2]},
        "traces": [{"node": "n", "usage": {"calls": 1}}],
        "latency": 0.25,
        "calls": 1,
        "prompt_tokens": 12,
        "completion_tokens": 3,
    }
    data.update(changes)
    return RunRecord(**data)


def test_round_trip_and_reopen(tmp_path):
    path = tmp_path / "runs.sqlite"
    store = RunStore(path)
    store.record(_run("a", created=1.0))
    store.record(_run("b", created=2.0, outputs=None, error="model_error: down"))
    store.add_feedback("a", 0.75, "close")
    store.close()
    again = RunStore(path)
    a = again.get("a")
    assert a is not None and a["inputs"] == {"q": "é ✓"} and a["outputs"] == {"a": [1, 2]}
    assert a["traces"] == [{"node": "n", "usage": {"calls": 1}}] and a["prompt_tokens"] == 12
    assert a["feedback"][0]["score"] == 0.75 and a["feedback"][0]["comment"] == "close"
    assert again.get("b")["error"] == "model_error: down" and again.get("b")["outputs"] is None
    assert [r["run_id"] for r in again.runs()] == ["b", "a"]
    assert [r["run_id"] for r in again.runs(with_feedback_only=True)] == ["a"]
    assert again.count() == 2 and again.get("zzz") is None


def test_feedback_errors(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    store.record(_run("a"))
    with pytest.raises(UnknownRunError):
        store.add_feedback("missing", 1.0)
    for bad in (math.nan, math.inf, True, "1"):
        with pytest.raises(ValueError):
            store.add_feedback("a", bad)  # type: ignore[arg-type]
    assert store.get("a")["feedback"] == []


def test_odd_values_are_stored_not_raised(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    store.record(_run("a", outputs={"obj": object(), "nan": math.nan}))
    assert set(store.get("a")["outputs"]) == {"obj", "nan"}


def test_concurrent_writers(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")

    def write(k: int) -> None:
        for i in range(25):
            store.record(_run(f"{k}-{i}"))
            store.add_feedback(f"{k}-{i}", float(i))

    threads = [threading.Thread(target=write, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count() == 200 and len(store.runs(limit=1000, with_feedback_only=True)) == 200
