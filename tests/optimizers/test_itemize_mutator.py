"""The itemize operator: a node that miscounts a total but lists the counted things well is itemized by the search."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage
from pydantic import BaseModel, Field

from microprompts import Flow, MicroPrompt, optimize
from microprompts.evals import exact_match
from microprompts.flows.address import check_mutation
from microprompts.nodes import Example
from microprompts.optimizers import Budget
from microprompts.optimizers.candidate import Candidate
from microprompts.optimizers.mutators import MutationContext
from microprompts.optimizers.mutators.examples import ChooseExamples, ExampleCount, NearestExamples
from microprompts.optimizers.mutators.structure import Itemize
from microprompts.testing import ScriptedChatModel, parse_user

NUMBERS = {"a": 1, "an": 1, "two": 2, "three": 3, "four": 4}
FRUIT = {"apple", "pear", "plum", "fig"}


class Count(BaseModel):
    answer: int = Field(ge=0, description="The total, as a whole number.")


NODE = MicroPrompt("count", task="Count the fruit.", inputs={"question": "What the speaker has."}, output=Count)


def things(question: str) -> list[tuple[str, int]]:
    """Each thing in 'I have two apples, a car and a fig.' with its quantity."""
    listed = question.removeprefix("I have ").rstrip(".").replace(" and ", ", ").split(", ")
    return [(words.split()[1].rstrip("s"), NUMBERS[words.split()[0]]) for words in listed]


def row(question: str) -> dict[str, Any]:
    total = sum(n for name, n in things(question) if name in FRUIT)
    return {"inputs": {"question": question}, "output": {"answer": total}}


def counter(messages: list[BaseMessage]) -> str:
    """A model that writes 10 for any total, but lists the things of the question right when asked for items."""
    system = str(messages[0].content)
    if "- items (list of object)" not in system:
        return json.dumps({"answer": 10})
    question = parse_user(str(messages[-1].content))["question"]
    items = [{"name": name, "quantity": n, "counted": name in FRUIT} for name, n in things(question)]
    return json.dumps({"items": items})


QUESTIONS = [
    "I have two apples, a car and a fig.",
    "I have a pear, three plums and a lamp.",
    "I have four figs and a chair.",
    "I have an apple, a pear, two cars and a plum.",
    "I have three apples and two figs.",
    "I have a lamp, a chair and two pears.",
    "I have two plums, a fig and an apple.",
    "I have a car and three pears.",
]


def ctx() -> MutationContext:
    return MutationContext(train=[row(q) for q in QUESTIONS], metric=exact_match("answer"), rng=random.Random(0))


def test_itemize_proposes_whole_number_fields_of_nodes_without_examples_and_can_undo() -> None:
    flow = Flow("f").then(NODE)
    children = Itemize().propose(Candidate(flow), ctx(), n=5)
    assert [c.nodes["count"].params.itemize for c, _ in children] == ["answer"]
    itemized = children[0][0]
    assert check_mutation(flow, itemized, Itemize().addresses(flow)) == {"count.params.itemize"}
    back = Itemize().propose(Candidate(itemized), ctx(), n=5)
    assert [c.nodes["count"].params.itemize for c, _ in back] == [None]
    shown = NODE.replace(examples=[Example(inputs={"question": "I have a fig."}, output={"answer": 1})])
    assert Itemize().propose(Candidate(Flow("f").then(shown)), ctx(), n=5) == []


def test_example_operators_leave_an_itemized_node_alone() -> None:
    itemized = Flow("f").then(NODE.with_params(itemize="answer"))
    for mutator in (ChooseExamples(), NearestExamples(), ExampleCount()):
        assert mutator.propose(Candidate(itemized), ctx(), n=4) == []
    assert ChooseExamples().propose(Candidate(Flow("f").then(NODE)), ctx(), n=4)  # the same node, not itemized


def test_the_search_itemizes_a_node_that_miscounts(tmp_path: Path) -> None:
    """Every no-model operator offered: the itemized child is right on every row where the seed is right on none."""
    rows = [row(q) for q in QUESTIONS]
    model = ScriptedChatModel(replies=counter)
    result = optimize(
        Flow("f").then(NODE),
        train=rows[:4],
        dev=rows[4:] + rows[:4],
        metric=exact_match("answer"),
        model=model,
        optimizer_model="none",
        holdout=0,
        budget=Budget(calls=60),
        run_dir=tmp_path / "run",
        progress=False,
    )
    assert result.baseline_score == 0.0 and result.best_score == 1.0
    assert result.best.nodes["count"].params.itemize == "answer"
    assert "itemize" in [e.get("operator") for e in result.lineage[1:]]
    assert re.search(r'"quantity"', json.dumps(result.best.to_dict())) is None  # the artifact holds no reply
