"""microprompts seed flows and metrics for the benchmark's tasks (run by the project's virtual environment).

Every single-prompt task is one micro-prompt whose task section is the task's seed instruction, reading the
row's text as ``input`` and writing ``answer`` (constrained to the labels where the task has a label set, as a
microprompts user would declare it); the seats task is ``examples.seats.flow:flow`` itself; HotpotQA is the
two-node flow of ``tasks/hotpot.py``. Metrics wrap ``common.score`` so every system is scored alike.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from microprompts import Flow, MicroPrompt, Score


class YesNo(BaseModel):
    answer: Literal["yes", "no"] = Field(description="The label: yes or no.")


class TrueFalse(BaseModel):
    answer: Literal["True", "False"] = Field(description="The label: True or False.")


class Number(BaseModel):
    answer: str = Field(description="The answer.")


LABEL_MODELS: dict[tuple[str, ...], type[BaseModel]] = {("yes", "no"): YesNo, ("True", "False"): TrueFalse}


def seed_flow(meta: dict[str, Any]) -> Flow:
    """The task's seed flow: what every system starts from."""
    task = meta["task"]
    if task == "seats":
        from examples.seats.flow import flow

        return flow
    if task == "hotpot":
        from benchmarks.peers.tasks.hotpot import hotpot_flow

        return hotpot_flow(*meta["instructions"])
    labels = tuple(meta.get("labels") or ())
    output = LABEL_MODELS.get(labels, Number)
    node = MicroPrompt(
        task.replace("-", "_"),
        task=meta["instruction"],
        inputs={"input": "The question or text to label."},
        output=output,
    )
    return Flow(task).then(node)


def prediction_of(meta: dict[str, Any], prediction: dict[str, Any] | None) -> Any:
    """The part of a flow's final state the benchmark scores."""
    if not prediction:
        return None
    key = "recommended_seats" if meta["task"] == "seats" else "answer"
    return prediction.get(key)


def metric_for(meta: dict[str, Any]):
    """``metric(example, prediction) -> Score`` for the optimizer, built on ``common.score``."""
    from benchmarks.peers import common

    kind = meta["metric"]

    def metric(example: Any, prediction: dict[str, Any]) -> Score:
        row = {"inputs": dict(example.inputs), "output": dict(example.output), "answer": example.output.get("answer")}
        pred = prediction_of(meta, prediction)
        value = common.score(kind, row, pred)
        return Score(value=value, feedback="" if value >= 1 else common.feedback(kind, row, pred))

    metric.__name__ = f"peers_{kind}"
    return metric
