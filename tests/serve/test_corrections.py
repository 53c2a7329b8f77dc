"""Feedback with a corrected output: validated against the flow's output fields, stored with the feedback (an older
store gains the column when opened), counted by `monitor`, and the gold of `reoptimize`'s rows."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import microprompts.cli.monitor
from microprompts.cli import main
from microprompts.serve import RunStore
from microprompts.serve.app import create_app
from microprompts.serve.monitor import monitor, table
from tests.evals import _finetune_flow as ff
from tests.serve.test_app import assert_error

OLD_SCHEMA = """
CREATE TABLE runs (
    id TEXT PRIMARY KEY, created REAL NOT NULL, flow TEXT NOT NULL, artifact_hash TEXT, endpoint TEXT NOT NULL,
    inputs TEXT NOT NULL, outputs TEXT, traces TEXT NOT NULL, latency REAL NOT NULL,
    calls INTEGER NOT NULL DEFAULT 0, prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0, error TEXT
);
CREATE TABLE feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL REFERENCES runs(id), created REAL NOT NULL,
    score REAL NOT NULL, comment TEXT
);
CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL NOT NULL, kind TEXT NOT NULL,
    detail TEXT NOT NULL);
"""


def _ask(client: Any, question: str) -> str:
    answer = client.post("/invoke", json={"input": {"question": question}})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["run_id"])


def test_a_valid_correction_is_stored_with_the_feedback(make_client: Any) -> None:
    client = make_client(flow=ff.FLOW, model=ff.model())
    run_id = _ask(client, "capital of France?")
    body = {"run_id": run_id, "score": 0, "comment": "wrong city", "correction": {"answer": "Paris"}}
    ok = client.post("/feedback", json=body)
    assert ok.status_code == 200, ok.text
    assert ok.json()["feedback"]["correction"] == {"answer": "Paris"}
    (note,) = client.get(f"/runs/{run_id}").json()["feedback"]
    assert note["correction"] == {"answer": "Paris"} and note["comment"] == "wrong city" and note["score"] == 0
    plain = _ask(client, "2+2?")
    assert client.post("/feedback", json={"run_id": plain, "score": 1}).json()["feedback"]["correction"] is None
    props = client.get("/openapi.json").json()["paths"]["/feedback"]["post"]["requestBody"]
    assert "correction" in json.dumps(props)


@pytest.mark.parametrize(
    ("correction", "named"),
    [
        ({"answr": "Paris"}, "correction.answr"),
        ({"answer": 3}, "correction.answer"),
        ({"answer": None}, "correction.answer"),
        ({"answer": {"__class__": "os.system"}}, "correction.answer"),
        ({"__class__": {"__init__": "x"}}, "correction.__class__"),
        ({}, "correction"),
        ("/etc/passwd", "correction"),
        (["answer"], "correction"),
    ],
)
def test_a_bad_correction_is_422_naming_the_field_and_nothing_is_stored(
    make_client: Any, correction: Any, named: str
) -> None:
    client = make_client(flow=ff.FLOW, model=ff.model())
    run_id = _ask(client, "capital of France?")
    error = assert_error(
        client.post("/feedback", json={"run_id": run_id, "score": 0, "correction": correction}), 422, "validation_error"
    )
    assert named in error["message"] and "/etc/passwd" not in error["message"] and "os.system" not in error["message"]
    assert client.get(f"/runs/{run_id}").json()["feedback"] == []


def _old_store(path: Path) -> None:
    conn = sqlite3.connect(str(path))
    conn.executescript(OLD_SCHEMA)
    inputs = json.dumps({"question": "capital of France?"})
    conn.execute(
        "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        ("old", 1.0, "qa2", "h", "invoke", inputs, json.dumps({"answer": "Lyon"}), "[]", 0.1, 2, 10, 2, None),
    )
    conn.execute("INSERT INTO feedback (run_id, created, score, comment) VALUES ('old', 2.0, 0.5, 'meh')")
    conn.commit()
    conn.close()


def test_an_old_store_opens_gains_the_column_and_takes_corrections(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _old_store(path)
    store = RunStore(path)
    (note,) = store.get("old")["feedback"]  # type: ignore[index]
    assert note["score"] == 0.5 and note["comment"] == "meh" and note["correction"] is None
    store.add_feedback("old", 0.0, None, {"answer": "Paris"})
    assert [f["correction"] for f in store.full_runs()[0]["feedback"]] == [None, {"answer": "Paris"}]
    store.close()
    with sqlite3.connect(str(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    again = RunStore(path)  # opening a migrated store again changes nothing
    assert len(again.get("old")["feedback"]) == 2  # type: ignore[index]
    again.close()


def test_a_server_on_an_old_store_stores_corrections(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    path = tmp_path / "old.sqlite"
    _old_store(path)
    with TestClient(create_app(ff.FLOW, model=ff.model(), store=path), base_url="http://127.0.0.1") as client:
        ok = client.post("/feedback", json={"run_id": "old", "score": 0, "correction": {"answer": "Paris"}})
        assert ok.status_code == 200, ok.text
        run_id = _ask(client, "2+2?")
        assert client.get(f"/runs/{run_id}").status_code == 200
        assert client.get("/runs/old").json()["feedback"][-1]["correction"] == {"answer": "Paris"}


def _served_store(tmp_path: Path, make_client: Any) -> tuple[str, str]:
    """A store of 6 runs served on the deployed artifact: 2 right (score 1), 3 corrected (score 0), 1 scored 0."""
    artifact = tmp_path / "deployed.json"
    ff.FLOW.save(str(artifact))
    client = make_client(flow=str(artifact), model=ff.model())
    questions = ["2+2?", "3+3?", "capital of France?", "capital of France?", "capital of France?", "3+3?"]
    for i, question in enumerate(questions):
        run_id = _ask(client, question)
        body: dict[str, Any] = {"run_id": run_id, "score": 1 if i < 2 else 0}
        if 2 <= i < 5:
            body["correction"] = {"answer": "Paris"}
        assert client.post("/feedback", json=body).status_code == 200
    store_path = client.app.state.store.path
    return str(artifact), str(store_path)


def test_monitor_counts_corrections(tmp_path: Path, make_client: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _, store_path = _served_store(tmp_path, make_client)
    store = RunStore(store_path)
    (stats,) = monitor(store.full_runs())
    store.close()
    assert stats.runs == 6 and stats.feedback == 6 and stats.corrections == 3
    assert "fixed" in table([stats]).splitlines()[0]
    assert main(["monitor", store_path, "--json", "--plot", str(tmp_path / "p.png")]) == 0
    (artifact,) = json.loads(capsys.readouterr().out)["artifacts"]
    assert artifact["corrections"] == 3


def test_reoptimize_rows_take_corrections_as_gold(
    tmp_path: Path, make_client: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    artifact, store_path = _served_store(tmp_path, make_client)
    seen: dict[str, Any] = {}

    class Kept:
        best = ff.FLOW
        test_baseline = test_best = 0.5

    def fake_optimize(flow: Any, **kwargs: Any) -> Kept:
        seen.update(kwargs)
        return Kept()

    monkeypatch.setattr(microprompts.cli.monitor, "optimize", fake_optimize)
    out = tmp_path / "new.json"
    code = main(["reoptimize", store_path, "--from", artifact, "--below", "0.9", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["rows"] == 5  # the run scored 0 without a correction is left out
    rows = [*seen["test"], *seen["dev"]]
    by_question = sorted((r.inputs["question"], r.output["answer"]) for r in rows)
    assert by_question == [("2+2?", "4"), ("3+3?", "6")] + [("capital of France?", "Paris")] * 3
