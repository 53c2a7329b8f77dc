"""The workflow benchmark's task: GSM8K word problems as a flow of micro-prompts and a tool (plan the steps, write
them as one arithmetic expression, and a calculator computes it), its metric (the number, normalized) and its real
rows. No other benchmark uses GSM8K.

The model writes the arithmetic and Python does it: Qwen 0.5B asked for the number itself (the session-30 flow, a
64-token `solve` step) scored 0.02 on 50 real test rows and 0.00 on 20 (plan restated, no room to compute)."""

from __future__ import annotations

import ast
import json
import operator
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from microprompts import Flow, FunctionNode, MicroPrompt
from microprompts.evals import Score

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "gsm8k"


class Plan(BaseModel):
    """The plan: the calculations, in order."""

    steps: list[str] = Field(description="Each calculation needed, in order, one short sentence each.")


class Expression(BaseModel):
    """The calculation, written out."""

    expression: str = Field(
        description="One arithmetic expression with the problem's numbers, + - * / and parentheses, whose value is "
        "the answer."
    )


_OPERATORS: dict[type[ast.AST], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_LONGEST = 300  # characters of expression the calculator reads
_LARGEST = 1e15  # any value past this is a runaway, not a grade-school answer


def _value(node: ast.AST) -> float:
    """The value of a parsed expression of numbers, + - * / // % ** and parentheses; anything else is refused."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _value(node.operand)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow) and (abs(right) > 12 or abs(left) > 1e6):
            raise ValueError("a power too large")
        value = _OPERATORS[type(node.op)](left, right)
        if isinstance(value, complex):  # (-8) ** 0.5
            raise ValueError("not a real number")
        if abs(value) > _LARGEST:
            raise ValueError("a value too large")
        return float(value)
    raise ValueError(f"{type(node).__name__} is not arithmetic")


def calculate(expression: str) -> str:
    """The value of an arithmetic expression the model wrote, as GSM8K writes answers (an integer when whole, else
    two decimals). Reads what comes before an `=`, drops `$` and thousands commas, reads `x`/`×`/`÷` as `*`/`/`;
    the text is the model's, so it is parsed, never run: numbers and operators only. Raises ValueError."""
    text = str(expression)[:_LONGEST].split("=")[0]
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text).replace("$", "").replace("×", "*").replace("÷", "/")
    text = re.sub(r"(?<=[\d)\s])[xX](?=[\s\d(])", "*", text).strip()
    try:
        value = _value(ast.parse(text, mode="eval").body)
    except (SyntaxError, ValueError, TypeError, ZeroDivisionError, OverflowError, RecursionError) as exc:
        raise ValueError(f"cannot calculate {text[:80]!r}: {exc}") from None
    return str(int(round(value))) if abs(value - round(value)) < 1e-9 else f"{value:.2f}".rstrip("0").rstrip(".")


def calculate_step(state: dict[str, Any]) -> dict[str, Any]:
    """The calculator tool: the flow's answer is the value of the expression the `write` step gave."""
    return {"answer": calculate(str(state.get("expression", "")))}


def gsm8k_flow() -> Flow:
    """plan (question -> steps), write (question, steps -> expression), then calculate (expression -> answer)."""
    plan = MicroPrompt(
        "plan",
        task="List the calculations that solve the math word problem.",
        inputs={"question": "A grade-school math word problem."},
        output=Plan,
        max_tokens=256,
    )
    write = MicroPrompt(
        "write",
        task="Write the steps as one arithmetic expression that computes the answer to the math word problem.",
        inputs={"question": "A grade-school math word problem.", "steps": "The calculations to carry out."},
        output=Expression,
        max_tokens=128,
    )
    tool = FunctionNode("calculate", calculate_step, reads=("expression",), writes=("answer",))
    return Flow("gsm8k").then(plan).then(write).then(tool)


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
