"""Where the search mutates: blame weights read off a parent's failing rows steer the node an operator picks; the
drop-input operator; and the calls kept back for the held-out re-score grow with the finalists there are."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from langgraph.graph import END, START
from pydantic import BaseModel

from microprompts.evals import RowResult, exact_match
from microprompts.flows import Flow
from microprompts.flows.address import check_mutation
from microprompts.models import ModelCaller
from microprompts.models.cache import CallCache
from microprompts.nodes import Example, MicroPrompt
from microprompts.nodes.runtime import NodeTrace
from microprompts.optimizers.budget import Budget, BudgetedCaller, BudgetTracker
from microprompts.optimizers.candidate import Candidate, Record
from microprompts.optimizers.engine import Engine, EngineRows, EngineSettings, Proposers
from microprompts.optimizers.evaluator import Evaluator, keyed_rows
from microprompts.optimizers.finals import holdout_reserve
from microprompts.optimizers.journal import Journal
from microprompts.optimizers.mutators import MutationContext
from microprompts.optimizers.mutators._focus import FLOOR, blame_weights, weighted_order
from microprompts.optimizers.mutators.examples import BootstrapExamples
from microprompts.optimizers.mutators.structure import DataFormat, DropInput
from tests.optimizers import engine_helpers as h


class Product(BaseModel):
    """The product."""

    product: str


class Signer(BaseModel):
    """Who signed."""

    customer: str


def _intake() -> Flow:
    """Two parallel micro-prompts: one reads the ticket and a catalog (choices from it, with an example), one the
    ticket alone."""
    identify = MicroPrompt(
        "identify",
        task="Say which product the ticket is about.",
        inputs={"ticket": "The message.", "catalog": (list[str], "The products.")},
        output=Product,
        examples=[
            Example(inputs={"ticket": "My Lamp broke. Ana", "catalog": ["Lamp", "Drone"]}, output={"product": "Lamp"})
        ],
    ).with_params(choices={"product": "catalog"})
    signer = MicroPrompt("customer", task="Say who signed.", inputs={"ticket": "The message."}, output=Signer)
    return (
        Flow("intake_small")
        .add(identify)
        .add(signer)
        .edge(START, "identify")
        .edge(START, "customer")
        .edge("identify", END)
        .edge("customer", END)
    )


def _ctx(seed: int = 0, focus: dict[str, float] | None = None) -> MutationContext:
    return MutationContext(train=[], metric=exact_match("product"), rng=random.Random(seed), focus=focus or {})


def _row(product: str, customer: str, error: str | None = None) -> RowResult:
    """A row whose gold is (Lamp, Ana) and whose nodes wrote `product` and `customer`."""
    expected = {"product": "Lamp", "customer": "Ana"}
    traces = [
        NodeTrace(node="identify", kind="micro_prompt", output={"product": product}, error=error),
        NodeTrace(node="customer", kind="micro_prompt", output={"customer": customer}),
    ]
    right = (product == "Lamp") + (customer == "Ana")
    return RowResult(index=0, inputs={}, expected=expected, traces=traces, score=right / 2, error=error)


def test_drop_input_drops_one_input_with_its_choices_and_example_values() -> None:
    flow = _intake()
    children = DropInput().propose(Candidate(flow), _ctx(), n=10)
    dropped = {mutation.note: child for child, mutation in children}
    assert set(dropped) == {"stopped reading ticket", "stopped reading catalog"}  # never the one-input node
    child = dropped["stopped reading catalog"]
    node = child.nodes["identify"]
    assert isinstance(node, MicroPrompt)
    assert list(node.inputs) == ["ticket"] and node.params.choices == {}
    assert [e.inputs for e in node.examples] == [{"ticket": "My Lamp broke. Ana"}]
    child.validate()
    child.compile(caller=ModelCaller(cache=None))
    assert check_mutation(flow, child, DropInput().addresses(flow)) == {
        "identify.inputs",
        "identify.params.choices",
        "identify.examples",
    }
    assert DropInput().propose(Candidate(child), _ctx(), n=10) == []  # one input left: nothing more to drop


def test_blame_weights_point_at_the_node_whose_own_answer_is_wrong() -> None:
    flow = _intake()
    rows = [_row("Drone", "Ana") for _ in range(6)] + [_row("Lamp", "Bo"), _row("Lamp", "Ana")]
    weights = blame_weights(flow, rows)
    assert set(weights) == {"identify", "customer"} and abs(sum(weights.values()) - 1.0) < 1e-9
    assert weights["identify"] > 0.7 > weights["customer"] >= FLOOR / 2
    errored = blame_weights(flow, [_row("", "Bo", error="OutputParseError") for _ in range(4)])
    assert errored["identify"] > errored["customer"]  # the node that raised is blamed first
    assert blame_weights(flow, [_row("Lamp", "Ana")]) == {}  # nothing failed: no focus
    single = Flow("one").then(MicroPrompt("customer", task="Who?", inputs={"ticket": "t"}, output=Signer))
    assert blame_weights(single, rows) == {}  # one node: nothing to choose between


def test_focus_steers_the_node_a_move_operator_picks() -> None:
    flow = _intake()
    picks: Counter[str] = Counter()
    for seed in range(200):
        ctx = _ctx(seed, {"identify": 0.9, "customer": 0.1})
        for _, mutation in DataFormat().propose(Candidate(flow), ctx, n=1):
            picks[mutation.address.split(".")[0]] += 1
    assert picks["identify"] > 3 * picks["customer"] > 0  # steered, never excluded
    even: Counter[str] = Counter()
    for seed in range(200):
        for _, mutation in DataFormat().propose(Candidate(flow), _ctx(seed), n=1):
            even[mutation.address.split(".")[0]] += 1
    assert 0.6 < even["identify"] / even["customer"] < 1.6  # no focus: either node alike


def test_weighted_order_keeps_every_item_once() -> None:
    items = list(range(10))
    order = weighted_order(items, lambda i: 10.0 if i == 7 else 1.0, random.Random(1))
    assert sorted(order) == items
    firsts = Counter(weighted_order(items, lambda i: 10.0 if i == 7 else 1.0, random.Random(s))[0] for s in range(300))
    assert firsts.most_common(1)[0][0] == 7


def _record(name: str) -> Record:
    return Record(Candidate(Flow(name).then(MicroPrompt("m", task="t", inputs={"x": "x"}, output=Signer))), None)


def test_the_held_out_reserve_grows_with_the_finalists_there_are() -> None:
    seed, a, b, c = (_record(n) for n in ("seed", "a", "b", "c"))
    kw: dict[str, Any] = {"finalists": 3, "rows": 6, "row_calls": 2}
    assert holdout_reserve([seed], seed, **kw) == 2 * 12  # the seed, and room for one finalist
    assert holdout_reserve([a, seed], seed, **kw) == 3 * 12
    assert holdout_reserve([a, b, c], seed, **kw) == 4 * 12  # three finalists and the seed: the most there can be
    assert holdout_reserve([a, b, c], seed, finalists=1, rows=6, row_calls=2) == 2 * 12


def _engine_with_train(calls: int) -> Engine:
    tracker = BudgetTracker(Budget(calls=calls))
    caller = BudgetedCaller(CallCache(None), tracker, "task")
    engine = Engine(
        h.topic_flow(),
        rows=EngineRows(dev=keyed_rows("dev", h.rows(0, 10)), train=keyed_rows("train", h.rows(100, 20))),
        evaluator=Evaluator(exact_match("label"), h.model(), caller, tracker),
        journal=Journal(None, False),
        proposers=Proposers(mutators=[BootstrapExamples(), DataFormat()]),
        settings=EngineSettings(seed=0, minibatch=4, holdout=0.0),
    )
    engine.start()
    return engine


def test_the_parent_runs_on_train_rows_only_when_a_child_can_still_be_scored_after() -> None:
    tight = _engine_with_train(10 + 12)  # the seed's 10 dev rows, then 12: 4 feedback rows + 10 dev rows do not fit
    children = tight.expand(tight.baseline, 2)
    assert {p.operator for p in children} == {"data_format"}  # bootstrap sat out: no calls paid for its feedback
    assert tight.tracker.total.task_calls == 10
    roomy = _engine_with_train(10 + 40)
    roomy.expand(roomy.baseline, 2)
    assert roomy.tracker.total.task_calls == 14  # the parent ran on 4 train rows for the operators that read them
