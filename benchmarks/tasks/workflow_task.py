"""The workflow benchmark's task: GSM8K word problems as a two-step flow (plan the steps, then compute the number),
its metric (the number, normalized) and its real rows. No other benchmark uses GSM8K."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from microprompts import Flow, MicroPrompt
from microprompts.evals import Score

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "gsm8k"


class Plan(BaseModel):
    """The plan: the calculations, in order."""

    steps: list[str] = Field(description="Each calculation needed, in order, one short sentence each.")


class Answer(BaseModel):
    """The final number."""

    answer: str = Field(description="The final answer: a number only, no units.")


def gsm8k_flow() -> Flow:
    """plan (question -> steps) then solve (question, steps -> answer)."""
    plan = MicroPrompt(
        "plan",
        task="List the calculations that solve the math word problem.",
        inputs={"question": "A grade-school math word problem."},
        output=Plan,
        max_tokens=256,
    )
    solve = MicroPrompt(
        "solve",
        task="Carry out the steps and give the final number.",
        inputs={"question": "A grade-school math word problem.", "steps": "The calculations to carry out."},
        output=Answer,
        max_tokens=64,
    )
    return Flow("gsm8k").then(plan).then(solve)


def _number(value: Any) -> str:
    text = str(value).replace(",", "").replace("$", "").strip()
    found = re.findall(r"-?\d+(?:\.\d+)?", text)
    if not found:
        return text.lower()
    number = float(found[-1])
    return str(int(number)) if number.is_integer() else str(number)


def number_match(example: Any, prediction: dict[str, Any]) -> Score:
    """1 when the predicted answer is the expected number (commas, units and `.0` ignored)."""
    expected = example.output["answer"] if hasattr(example, "output") else example["output"]["answer"]
    got = prediction.get("answer")
    ok = _number(got) == _number(expected)
    return Score(value=1.0 if ok else 0.0, feedback="" if ok else f"expected {expected}, got {got}")


def real_rows(split: str, start: int, count: int) -> list[dict[str, Any]]:
    """Rows of the real data: `test` (test.jsonl) or `train` (train_sample1000.jsonl), in the canonical shape."""
    name = "test.jsonl" if split == "test" else "train_sample1000.jsonl"
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()[start : start + count]
    rows = [json.loads(line) for line in lines]
    return [
        {"id": r["id"], "inputs": {"question": r["question"]}, "output": {"answer": str(r["answer"])}} for r in rows
    ]
