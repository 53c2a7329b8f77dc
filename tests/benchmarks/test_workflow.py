"""The workflow benchmark's resume pieces: chunks merged without near-duplicates across them, and --resume refusing
a results file of other sizes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, cast

import pytest
from langchain_core.messages import BaseMessage

from benchmarks import workflow
from benchmarks.tasks.workflow_task import DATA, gsm8k_flow, real_rows
from benchmarks.workflow import FULL, merged, resumed, serve_step
from microprompts.data import Row
from microprompts.data.synthesize import write_rows
from microprompts.serve.store import RunStore
from microprompts.testing import ScriptedChatModel


def _row(question: str, answer: str = "1") -> Row:
    return Row(inputs={"question": question}, output={"answer": answer})


def test_chunks_merge_in_order_and_a_near_duplicate_across_chunks_is_dropped(tmp_path: Path) -> None:
    first = write_rows([_row("Tom has 3 apples and buys 4 more. How many apples?")], tmp_path / "a.jsonl")
    second = write_rows(
        [_row("Tom has 3 apples and buys 4 more. How many apples? "), _row("A train goes 60 km/h for 2 hours.")],
        tmp_path / "b.jsonl",
    )
    rows = merged([first, second])
    assert [r.inputs["question"] for r in rows] == [
        "Tom has 3 apples and buys 4 more. How many apples?",
        "A train goes 60 km/h for 2 hours.",
    ]


def _args(**sizes: int) -> argparse.Namespace:
    return argparse.Namespace(resume=True, **{**FULL, **sizes})


def test_resume_keeps_the_recorded_steps_of_a_run_of_the_same_sizes(tmp_path: Path) -> None:
    out = tmp_path / "workflow.json"
    steps = {"synthesize": {"rows": 200, "done": True}, "optimize": {"calls": 300}}
    out.write_text(json.dumps({"args": {**FULL, "quick": False}, "steps": steps}))
    assert resumed(out, _args()) == steps
    assert resumed(tmp_path / "none.json", _args()) == {}  # nothing to resume: a fresh run
    with pytest.raises(SystemExit, match="run the same sizes"):
        resumed(out, _args(synth=100))
    assert resumed(out, argparse.Namespace(resume=False, **FULL)) == {}


def test_serving_runs_every_fed_row_two_at_a_time_and_records_its_feedback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not DATA.is_dir():
        pytest.skip(f"the GSM8K rows are read from {DATA} (../shared is absent)")
    monkeypatch.setattr(workflow, "WORK", tmp_path)
    artifact = tmp_path / "deployed.json"
    gsm8k_flow().save(artifact)
    rows = real_rows("train", 0, 6)
    right = rows[0]["inputs"]["question"]

    def reply(messages: list[BaseMessage]) -> dict[str, Any]:
        text = str(messages[-1].content)
        if "steps" not in text:
            return {"steps": ["add them"]}
        return {"expression": f"{rows[0]['output']['answer']} * 1" if right in text else "2 - 3"}

    steps: dict[str, Any] = {}
    args = argparse.Namespace(feed=6, replicas=2)
    client, store = serve_step(args, artifact, cast(Any, ScriptedChatModel(replies=reply)), steps)
    try:
        assert steps["serve"]["rows"] == 6 and steps["serve"]["calls"] == 12 and steps["serve"]["failed_runs"] == 0
        assert steps["serve"]["score"] == round(1 / 6, 4)
        runs = RunStore(store).runs(with_feedback_only=True)
        assert len(runs) == 6 and all(r["feedback_count"] == 1 for r in runs)
        assert sorted(r["last_score"] for r in runs) == [0.0] * 5 + [1.0]
    finally:
        client.__exit__(None, None, None)


def test_the_report_says_each_step_in_words_and_report_only_rewrites_it_with_notes(tmp_path: Path) -> None:
    steps = {
        "synthesize": {
            "rows": 200,
            "generated": 308,
            "rejected": {"duplicate": 82, "teacher failed": 0},
            "commit": "a" * 40,
        },
        "optimize": {"rows": 120, "calls": 288, "optimizer_calls": 4, "dev": [0.4667, 0.6], "real_test": [0.06, 0.08]},
        "reoptimize": {"rows": 100, "held_out": 33, "held_out_scores": [0.212, 0.182], "written": None},
    }
    out = tmp_path / "workflow.json"
    out.write_text(json.dumps({"command": "python benchmarks/workflow.py --resume", "status": "done", "steps": steps}))
    notes = tmp_path / "notes.md"
    notes.write_text("The flow writes\nan expression.\n\nSynthesis kept.\n")
    workflow.report_only(out, notes)
    text = out.with_suffix(".md").read_text()
    assert "generated 308, rejected 82 duplicate;" in text and "| aaaaaaa |" in text
    assert "| 288 + 4 optimizer |" in text and "synthesized dev 0.467 -> 0.600; real test 0.060 -> 0.080" in text
    assert "held-out 33 rows: deployed 0.212 vs new 0.182; deployed artifact kept" in text
    assert text.endswith("Notes:\n\n- The flow writes an expression.\n- Synthesis kept.\n")
    assert json.loads(out.read_text())["notes"] == ["The flow writes an expression.", "Synthesis kept."]
