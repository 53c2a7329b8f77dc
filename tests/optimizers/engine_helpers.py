"""Importable pieces for the engine tests: a simulated topic task whose best configuration is known, flows for
it (one node, and a two-node pipeline), its rows, and a small no-model mutator set.

The simulated model answers a row right with chance 0.1 + 0.3 (rows rendered as JSON) + 0.3 (a reasoning field)
+ 0.3 (at least one worked example shown): only a prompt with all three scores 1.0 on every row.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from microprompts.data import Row
from microprompts.evals.metrics import exact_match
from microprompts.flows import Flow
from microprompts.models import CallCache
from microprompts.nodes import FunctionNode, MicroPrompt
from microprompts.optimizers.budget import Budget, BudgetedCaller, BudgetTracker
from microprompts.optimizers.engine import Engine, EngineRows, EngineSettings
from microprompts.optimizers.evaluator import Evaluator, keyed_rows
from microprompts.optimizers.journal import Journal
from microprompts.optimizers.mutators.examples import ChooseExamples, ExampleCount
from microprompts.optimizers.mutators.params import Temperature
from microprompts.optimizers.mutators.structure import AddGuideline, DataFormat, DropSection, ToggleReasoning
from microprompts.testing import SimTask, SimulatedChatModel, data_format, has_examples, reasoning_on

LABELS = ["sports", "business", "world", "tech"]


class Topic(BaseModel):
    label: Literal["sports", "business", "world", "tech"] = Field(description="The headline's section.")


class Cleaned(BaseModel):
    clean: str


def answer(inputs: dict[str, Any]) -> dict[str, Any]:
    """The right label of a headline (by its number)."""
    text = str(inputs.get("headline") or inputs.get("clean") or "")
    return {"label": LABELS[int(text.split()[-1]) % 4]}


TASK = SimTask(
    "topic",
    answer=answer,
    labels=LABELS,
    base=0.1,
    boosts=[data_format("json", 0.3), reasoning_on(0.3), has_examples(0.3)],
)


def model(name: str = "sim") -> SimulatedChatModel:
    """A fresh simulated model (its own call log; same cache identity for the same task)."""
    return SimulatedChatModel(task=TASK, name=name)


def rows(start: int, count: int) -> list[Row]:
    """Labelled headline rows numbered start..start+count-1."""
    return [
        Row(inputs={"headline": f"headline number {i}"}, output=answer({"headline": f"headline number {i}"}), id=str(i))
        for i in range(start, start + count)
    ]


CLASSIFY = MicroPrompt(
    "classify",
    task="Classify the headline's topic. Pick the best section.",
    inputs={"headline": "A news headline."},
    output=Topic,
)


def topic_flow() -> Flow:
    """One micro-prompt: headline -> label."""
    return Flow("topic").then(CLASSIFY)


def clean(state: dict[str, Any]) -> dict[str, Any]:
    """A function node that tidies the headline."""
    return {"clean": " ".join(str(state["headline"]).split())}


def pipeline() -> Flow:
    """A function node then a micro-prompt: headline -> clean -> label."""
    node = MicroPrompt(
        "label_it",
        task="Label the cleaned headline. Use one section.",
        inputs={"clean": "The cleaned headline."},
        output=Topic,
    )
    return Flow("topic_pipe").then(FunctionNode("tidy", clean, reads=["headline"], writes=["clean"])).then(node)


def search_mutators() -> list[Any]:
    """The operators that can reach the best configuration, plus distractors."""
    return [
        DataFormat(),
        ToggleReasoning(),
        ChooseExamples(),
        ExampleCount(),
        AddGuideline(),
        Temperature(),
        DropSection(),
    ]


def is_best(flow: Flow, node: str = "classify") -> bool:
    """True for the known best configuration: JSON data, a reasoning field, examples shown."""
    mp = flow.nodes[node]
    assert isinstance(mp, MicroPrompt)
    return mp.params.data_format == "json" and mp.params.reasoning and len(mp.shown_examples()) > 0


def unstarted_engine(
    dev: Sequence[Row],
    model: Any,
    *,
    budget: Budget | None = None,
    cache: Path | None = None,
    minibatch: int = 8,
    margin: float = 0.0,
    holdout: float = 0.0,
    tie_rung: int = 3,
) -> Engine:
    """An engine on the topic flow with no mutators and seed 0, scored by exact match on the label: for tests that
    drive screening, minibatches and the budget by hand (all of dev selects unless `holdout` keeps a slice out).
    Nothing is scored until `start()`."""
    tracker = BudgetTracker(budget or Budget())
    caller = BudgetedCaller(CallCache(cache), tracker, "task")
    metric = exact_match("label")
    return Engine(
        topic_flow(),
        rows=EngineRows(dev=keyed_rows("dev", list(dev))),
        evaluator=Evaluator(metric, model, caller, tracker),
        journal=Journal(None, False),
        settings=EngineSettings(seed=0, minibatch=minibatch, margin=margin, holdout=holdout, tie_rung=tie_rung),
    )


def engine(
    dev: Sequence[Row],
    model: Any,
    *,
    budget: Budget | None = None,
    cache: Path | None = None,
    minibatch: int = 8,
    margin: float = 0.0,
    holdout: float = 0.0,
    tie_rung: int = 3,
) -> Engine:
    """`unstarted_engine`, started: its baseline is scored on `dev`."""
    built = unstarted_engine(
        dev, model, budget=budget, cache=cache, minibatch=minibatch, margin=margin, holdout=holdout, tie_rung=tie_rung
    )
    built.start()
    return built
