"""The workflow benchmark's resume pieces: chunks merged without near-duplicates across them, and --resume refusing
a results file of other sizes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from benchmarks.workflow import FULL, merged, resumed
from microprompts.data import Row
from microprompts.data.synthesize import write_rows


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
