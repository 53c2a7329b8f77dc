"""`microprompts export-finetune --store`: chat JSONL from a serve run store, keeping the runs with positive feedback
or a corrected output (the correction written as the reply of the node that writes the corrected fields)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from microprompts.cli import main
from microprompts.evals.finetune import correction_of, rows_from_runs, validate_file
from microprompts.nodes.render import render_reply
from microprompts.serve.app import create_app
from tests.evals import _finetune_flow as ff


def _store(tmp_path: Path) -> Path:
    """Runs served and given feedback over HTTP: 2+2 right (1), 3+3 right but scored 0.5, France wrong and
    corrected (score 0), France wrong and scored 0, 2+2 with no feedback."""
    path = tmp_path / "runs.sqlite"
    with TestClient(create_app(ff.FLOW, model=ff.model(), store=path), base_url="http://127.0.0.1") as client:
        feedback: list[dict[str, Any] | None] = [
            {"score": 1},
            {"score": 0.5},
            {"score": 0, "correction": {"answer": "Paris"}},
            {"score": 0},
            None,
        ]
        for question, note in zip(
            ["2+2?", "3+3?", "capital of France?", "capital of France?", "2+2?"], feedback, strict=True
        ):
            run_id = client.post("/invoke", json={"input": {"question": question}}).json()["run_id"]
            if note is not None:
                assert client.post("/feedback", json={"run_id": run_id, **note}).status_code == 200
    return path


def _export(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[dict[str, Any], str]:
    artifact = tmp_path / "flow.json"
    ff.FLOW.save(str(artifact))
    out = tmp_path / "ft"
    code = main(["export-finetune", str(artifact), "--store", str(_store(tmp_path)), "--out", str(out), *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out), captured.err


def test_export_from_a_store_keeps_positive_and_corrected_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary, err = _export(tmp_path, capsys)
    assert summary["rows"] == 4 and summary["kept"] == 2  # the run without feedback is never read
    assert summary["dropped"] == {"below min score": 2} and "kept 2 of 4 rows" in err
    for name in ("topic", "answer"):
        assert len(validate_file(summary["files"][name]["path"])) == summary["files"][name]["lines"] == 2
    lines = [json.loads(t) for t in Path(summary["files"]["answer"]["path"]).read_text().splitlines()]
    replies = [line["messages"][-1]["content"] for line in lines]
    node = ff.FLOW.nodes["answer"]
    assert replies == [
        render_reply({"answer": "4"}, node.params.reply_format),  # type: ignore[attr-defined]
        render_reply({"answer": "Paris"}, node.params.reply_format),  # type: ignore[attr-defined]  # not Lyon
    ]
    assert "capital of France?" in lines[1]["messages"][1]["content"]
    topics = [json.loads(t)["messages"][-1]["content"] for t in Path(summary["files"]["topic"]["path"]).open()]
    fmt = ff.FLOW.nodes["topic"].params.reply_format  # type: ignore[attr-defined]
    assert topics == [render_reply({"topic": t}, fmt) for t in ("math", "geo")]  # a correction of answer only


def test_min_score_lowers_the_mark_and_corrections_stay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary, _ = _export(tmp_path, capsys, "--min-score", "0.5")
    assert summary["kept"] == 3 and summary["dropped"] == {"below min score": 1}


def test_corrections_are_gold_for_rows_and_read_before_the_legacy_comment() -> None:
    assert correction_of({"correction": {"answer": "Paris"}, "comment": '{"output": {"answer": "x"}}'}) == {
        "answer": "Paris"
    }
    assert correction_of({"correction": None, "comment": '{"output": {"answer": "x"}}'}) == {"answer": "x"}
    assert correction_of({"correction": {}, "comment": "fine"}) is None
    runs = [
        {
            "run_id": "a",
            "inputs": {"question": "q1"},
            "outputs": {"topic": "t", "answer": "no"},
            "feedback": [{"score": 0, "correction": {"answer": "yes"}}],
        },
        {
            "run_id": "b",
            "inputs": {"question": "q2"},
            "outputs": None,
            "error": "boom",
            "feedback": [{"score": 0, "correction": {"topic": "x", "answer": "y"}}],
        },
        {"run_id": "c", "inputs": {"question": "q3"}, "outputs": {"answer": "ok"}, "feedback": [{"score": 1}]},
        {"run_id": "d", "inputs": {"question": "q4"}, "outputs": {"answer": "bad"}, "feedback": [{"score": 0}]},
    ]
    rows = rows_from_runs(ff.FLOW, runs)
    assert [(r.id, r.output) for r in rows] == [
        ("a", {"topic": "t", "answer": "yes"}),  # the correction over the run's own output
        ("b", {"topic": "x", "answer": "y"}),  # a failed run with a correction is still a row
        ("c", {"answer": "ok"}),
    ]
