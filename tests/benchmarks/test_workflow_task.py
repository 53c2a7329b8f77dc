"""The workflow task's calculator: the model's arithmetic computed, anything else refused (the text is a model
reply, so it is parsed, never run), and the flow's answer is what it computed."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from benchmarks.tasks.workflow_task import calculate, gsm8k_flow, number_match
from microprompts.evals.evaluate import evaluate
from microprompts.testing import ScriptedChatModel


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("(16 - 3 - 4) * 2", "18"),
        ("2 + (2/2) = 3", "3"),  # what comes after '=' is the model's own arithmetic, not read
        ("$1,200 x 3", "3600"),
        ("2 × 3 ÷ 4", "1.5"),
        ("10 / 3", "3.33"),
        ("-(5 - 7) ** 2", "-4"),
    ],
)
def test_the_calculator_computes_what_the_model_wrote(expression: str, value: str) -> None:
    assert calculate(expression) == value


@pytest.mark.parametrize(
    "expression",
    [
        '__import__("os").system("id")',
        "open('/etc/passwd')",
        "(1).__class__",
        "x + 1",
        "9 ** 9 ** 9",
        "10 ** 400",
        "1 / 0",
        "(-8) ** 0.5",
        "James runs 3 sprints a week.",
        "(" * 200 + "1" + ")" * 200,
    ],
)
def test_the_calculator_refuses_anything_but_bounded_arithmetic(expression: str) -> None:
    with pytest.raises(ValueError, match="cannot calculate"):
        calculate(expression)


def test_the_flow_answers_with_the_computed_value_and_a_prose_expression_fails_its_row_with_the_reason() -> None:
    def reply(messages: list[BaseMessage]) -> dict[str, Any]:
        text = str(messages[-1].content)
        if "steps" not in text:
            return {"steps": ["16 minus 3 minus 4", "times 2"]}
        return {"expression": "(16 - 3 - 4) * 2" if "ducks" in text else "she sells the rest"}

    rows = [
        {
            "inputs": {"question": "Janet's ducks lay 16 eggs; she eats 3 and bakes with 4; $2 each?"},
            "output": {"answer": "18"},
        },
        {"inputs": {"question": "A robe takes 2 bolts; how many?"}, "output": {"answer": "3"}},
    ]
    result = evaluate(gsm8k_flow(), rows, number_match, model=ScriptedChatModel(replies=reply), concurrency=1)
    assert result.rows[0].prediction is not None and result.rows[0].prediction["answer"] == "18"
    assert result.rows[0].score == 1.0
    assert result.rows[1].error is not None and "cannot calculate 'she sells the rest'" in result.rows[1].error
