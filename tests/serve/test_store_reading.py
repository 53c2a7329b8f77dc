"""Reading a run store for analysis: whole runs oldest first, service events, and one clear error for a missing,
corrupt or empty store."""

from __future__ import annotations

from pathlib import Path

import pytest

from microprompts.serve import RunRecord, RunStore
from microprompts.serve.store import StoreError, open_store


def _run(run_id: str, created: float) -> RunRecord:
    return RunRecord(run_id=run_id, flow="qa", created=created, inputs={"q": run_id}, outputs={"a": run_id})


def test_full_runs_oldest_first_with_feedback_and_events(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.sqlite")
    for i, name in enumerate(["b", "a", "c"]):
        store.record(_run(name, float(i)))
    store.add_feedback("a", 1.0, "good")
    store.record_event("reload", {"ok": False, "error": "bad artifact"})
    store.close()
    again = open_store(tmp_path / "runs.sqlite")
    assert [r["run_id"] for r in again.full_runs()] == ["b", "a", "c"]
    (run,) = again.full_runs(with_feedback_only=True)
    assert run["inputs"] == {"q": "a"} and run["feedback"][0]["comment"] == "good"
    assert [e["detail"] for e in again.events("reload")] == [{"ok": False, "error": "bad artifact"}]
    assert again.events("other") == []


def test_missing_corrupt_and_empty_stores_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no run store at"):
        open_store(tmp_path / "missing.sqlite")
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="not a readable run store"):
        open_store(corrupt)
    RunStore(tmp_path / "empty.sqlite").close()
    with pytest.raises(StoreError, match="holds no runs"):
        open_store(tmp_path / "empty.sqlite")


def test_a_run_with_corrupt_json_is_one_clear_error(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.sqlite")
    store.record(_run("a", 1.0))
    store._conn.execute("UPDATE runs SET inputs = '{broken'")
    store._conn.commit()
    with pytest.raises(StoreError, match="corrupt run store"):
        store.full_runs()
