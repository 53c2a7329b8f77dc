"""Fine-tuning export: per micro-prompt chat JSONL from scored rows and from served runs, validated on write."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from microprompts import ModelCaller
from microprompts.evals import exact_match
from microprompts.evals.finetune import correction_of, export_finetune, export_runs, validate_file
from tests.evals import _finetune_flow as ff


def _lines(path: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_rows_meeting_the_score_become_chat_lines_per_micro_prompt(tmp_path: Path) -> None:
    caller = ModelCaller(cache=None, base_delay=0.0)
    report = export_finetune(ff.FLOW, ff.rows(), exact_match("answer"), tmp_path, model=ff.model(), caller=caller)
    assert report.rows == 3 and report.kept == 2 and report.dropped == {"below min score": 1}
    assert set(report.files) == {"topic", "answer"}
    topic = _lines(report.files["topic"].path)
    assert [m["role"] for m in topic[0]["messages"]] == ["system", "user", "assistant"]
    assert "Name the question's topic." in topic[0]["messages"][0]["content"]
    assert {json.loads(line["messages"][2]["content"])["topic"] for line in topic} == {"math"}
    answers = [json.loads(line["messages"][-1]["content"]) for line in _lines(report.files["answer"].path)]
    assert sorted(a["answer"] for a in answers) == ["4", "6"]
    info = report.files["answer"]
    assert info.lines == 2 and len(info.per_line) == 2 and info.longest == max(info.per_line) > 0
    assert "kept 2 of 3 rows" in report.line()


def test_gold_outputs_replace_the_final_node_reply_and_long_lines_are_dropped(tmp_path: Path) -> None:
    caller = ModelCaller(cache=None, base_delay=0.0)
    report = export_finetune(
        ff.FLOW, ff.rows(), exact_match("answer"), tmp_path, model=ff.model(), caller=caller, min_score=0.0
    )
    answers = [json.loads(line["messages"][-1]["content"]) for line in _lines(report.files["answer"].path)]
    assert sorted(a["answer"] for a in answers) == ["4", "6", "Paris"]  # gold, not the wrong "Lyon"
    tiny = export_finetune(
        ff.FLOW, ff.rows(), exact_match("answer"), tmp_path / "tiny", model=ff.model(), caller=caller, context=10
    )
    assert tiny.files == {} and tiny.dropped == {"below min score": 1, "over context": 4}


def _run(question: str, score: float | None, comment: str | None = None, error: str | None = None) -> dict[str, Any]:
    topic = "geo" if "France" in question else "math"
    return {
        "inputs": {"question": question},
        "error": error,
        "traces": [
            {"node": "topic", "kind": "micro_prompt", "inputs": {"question": question}, "output": {"topic": topic}},
            {
                "node": "answer",
                "kind": "micro_prompt",
                "inputs": {"question": question, "topic": topic},
                "output": {"answer": ff.ANSWERS[question]},
            },
        ],
        "feedback": [] if score is None else [{"score": score, "comment": comment}],
    }


def test_runs_with_positive_feedback_or_a_correction_are_kept(tmp_path: Path) -> None:
    runs = [
        _run("2+2?", 1.0),
        _run("3+3?", 0.0),
        _run("capital of France?", 0.0, json.dumps({"output": {"answer": "Paris"}})),
        _run("2+2?", None),
        _run("3+3?", 1.0, error="boom"),
    ]
    report = export_runs(ff.FLOW, runs, tmp_path)
    assert report.kept == 2 and report.dropped == {"below min score": 1, "no feedback": 1, "error": 1}
    answers = [json.loads(line["messages"][-1]["content"]) for line in _lines(report.files["answer"].path)]
    assert answers == [{"answer": "4"}, {"answer": "Paris"}]


def test_correction_must_be_a_json_object_with_an_output_object() -> None:
    assert correction_of({"comment": '{"output": {"answer": "x"}}'}) == {"answer": "x"}
    for comment in (None, "great", "{broken", '{"output": 3}', "[1]"):
        assert correction_of({"comment": comment}) is None


def test_validation_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    good = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]}
    good["messages"].append({"role": "assistant", "content": "a"})
    path.write_text(json.dumps(good) + "\nnot json\n")
    with pytest.raises(ValueError, match="line 2: not a chat line"):
        validate_file(path)
    swapped = {"messages": [good["messages"][0], good["messages"][2], good["messages"][1]]}
    path.write_text(json.dumps(swapped) + "\n")
    with pytest.raises(ValueError, match="line 1: roles"):
        validate_file(path)
    assert len(validate_file(_write(tmp_path, good))) == 1


def _write(tmp_path: Path, line: dict[str, Any]) -> Path:
    path = tmp_path / "good.jsonl"
    path.write_text(json.dumps(line) + "\n")
    return path
