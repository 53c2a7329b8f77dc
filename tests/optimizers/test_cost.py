"""Cost-aware model choice (issue 22, item 4): prices per model spec, the priced objective, and the Pareto front of
dev score against cost per row saved as servable artifacts, all on the simulated topic task.

Two simulated "models" stand behind the specs ``sim:big`` (the task model) and ``sim:small`` (a node may switch to
it): the runtime resolves ``sim:small`` to a simulated model of the same task."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import microprompts.nodes.runtime as runtime_module
from microprompts.evals import RowResult, exact_match
from microprompts.flows import Flow
from microprompts.models import ModelCaller, Usage
from microprompts.nodes import MicroPrompt
from microprompts.nodes.runtime import NodeTrace
from microprompts.optimizers import BeamSearch, Budget, Optimizer, OptimizeResult, optimize
from microprompts.optimizers.cost import (
    Price,
    PriceError,
    Pricing,
    as_price,
    cost_front,
    node_models,
    parse_price,
    trace_tokens,
)
from microprompts.optimizers.mutators.params import ModelChoice
from microprompts.optimizers.selection import Objective
from microprompts.testing import SimulatedChatModel
from tests.optimizers import engine_helpers as h

BIG, SMALL = "sim:big", "sim:small"
PRICES: dict[str, Any] = {BIG: "10/30", SMALL: {"input": 0.1, "output": 0.3}}


@pytest.fixture
def small_model(monkeypatch: pytest.MonkeyPatch) -> SimulatedChatModel:
    """`sim:small` as a node's own model resolves to a simulated model of the topic task (no bonus)."""
    small = SimulatedChatModel(task=h.TASK, name="small")
    real = runtime_module.resolve_model

    def resolve(spec: Any, *args: Any, **kwargs: Any) -> Any:
        return small if spec == SMALL else real(spec, *args, **kwargs)

    monkeypatch.setattr(runtime_module, "resolve_model", resolve)
    return small


# --- pricing arithmetic -------------------------------------------------------------------------------------------


def _trace(node: str, tokens: int = 100, reply: str = "x" * 40, **usage: Any) -> NodeTrace:
    return NodeTrace(node=node, kind="micro_prompt", rendered_tokens=tokens, replies=[reply], usage=Usage(**usage))


def _row(*traces: NodeTrace) -> RowResult:
    return RowResult(index=0, inputs={}, traces=list(traces))


def test_a_price_is_dollars_per_million_tokens_in_and_out() -> None:
    assert Price(input=10, output=30).tokens_cost(100, 10) == pytest.approx(0.0013)
    assert Price().tokens_cost(1e6, 1e6) == 0.0
    with pytest.raises(ValueError):
        Price(input=-1)
    with pytest.raises(ValueError):
        Price(second=float("inf"))


@pytest.mark.parametrize(
    ("text", "spec", "price"),
    [
        ("openai:gpt-4o-mini=0.15/0.6", "openai:gpt-4o-mini", Price(input=0.15, output=0.6)),
        ("openai:m@http://127.0.0.1:8000/v1=1/2", "openai:m@http://127.0.0.1:8000/v1", Price(input=1, output=2)),
        ("local=0.0001s", "local", Price(second=0.0001)),
        ("local=s", "local", Price(second=1.0)),
        ("x=1e-3/2E1", "x", Price(input=0.001, output=20)),
    ],
)
def test_price_values_parse(text: str, spec: str, price: Price) -> None:
    assert parse_price(text) == (spec, price)


@pytest.mark.parametrize("text", ["local", "=1/2", "a=1/", "a=-1/2", "a=abc", "a=1/2/3", "a=2m", "a=1e999/1"])
def test_bad_price_values_say_the_forms(text: str) -> None:
    with pytest.raises(PriceError, match="expected SPEC=IN/OUT"):
        parse_price(text)


def test_prices_come_as_values_dicts_or_strings() -> None:
    assert as_price("0.5/1") == Price(input=0.5, output=1)
    assert as_price({"second": 2}) == Price(second=2)
    with pytest.raises(PriceError):
        as_price({"inptu": 1})
    with pytest.raises(ValueError):
        Optimizer(prices={"x": {"input": -1}})
    with pytest.raises(ValueError):
        Optimizer(prices={"x": "cheap"})


def test_a_rows_cost_sums_each_nodes_trace_at_its_models_price() -> None:
    pricing = Pricing.of({"big": "10/30", "local": "0.5s"}, task="big")
    tidy = NodeTrace(node="tidy", kind="function", seconds=3.0)
    row = _row(_trace("a"), _trace("b", calls=1, seconds=2.0), _trace("c"), tidy)
    models = {"a": "big", "b": "local", "c": "unpriced"}
    assert trace_tokens(row.traces[0]) == (100, 10)
    assert pricing.row_cost(row, models) == pytest.approx(0.0013 + 0.5 * 2.0)  # c has no price, tidy no model
    assert pricing.row_cost(_row(_trace("x")), {}) == pytest.approx(0.0013)  # a node not listed runs on the task
    assert pricing.unpriced(["big", "unpriced", "unpriced"]) == ["unpriced"]
    assert pricing.unit == "dollars" and Pricing.of({"local": "s"}, "local").unit == "seconds"


def test_a_cached_calls_seconds_are_the_models_mean_rate_over_paid_calls() -> None:
    pricing = Pricing.of({"local": "s"}, task="local")
    cached = _row(_trace("a", tokens=45, cached_calls=1))  # 45 + 10 tokens, no seconds measured
    assert pricing.row_cost(cached, {"a": "local"}) == 0.0  # no paid call seen yet: no rate
    pricing.observe(_row(_trace("a", calls=1, seconds=2.2)), {"a": "local"})  # 110 tokens in 2.2 s
    assert pricing.row_cost(cached, {"a": "local"}) == pytest.approx(55 * 0.02)
    assert pricing.row_cost(_row(_trace("a", calls=1, seconds=1.0)), {"a": "local"}) == 1.0  # paid: measured


def test_the_objective_weighs_whatever_cost_it_is_given() -> None:
    assert Objective(2.0)(0.9, 0.05) == pytest.approx(0.8)
    assert Objective()(0.9, 1e9) == 0.9


def test_node_models_name_the_task_model_for_nodes_without_their_own() -> None:
    flow = h.topic_flow()
    assert node_models(flow, BIG) == {"classify": BIG}
    mp = flow.nodes["classify"]
    assert isinstance(mp, MicroPrompt)
    assert node_models(Flow("t").then(mp.with_params(model=SMALL)), BIG) == {"classify": SMALL}


def test_the_cost_front_keeps_what_nothing_beats_on_score_and_cost() -> None:
    points = [
        {"id": "a", "score": 0.9, "cost_per_row": 3.0},
        {"id": "b", "score": 0.8, "cost_per_row": 1.0},
        {"id": "c", "score": 0.7, "cost_per_row": 2.0},
        {"id": "d", "score": 0.9, "cost_per_row": 4.0},
    ]
    assert [p["id"] for p in cost_front(points)] == ["a", "b"]


# --- the priced objective in a run ------------------------------------------------------------------------------


def _model_run(run_dir: Path, task_model: SimulatedChatModel, **settings: Any) -> OptimizeResult:
    """The topic flow on `task_model` (named sim:big), where the only operator moves a node to sim:small."""
    return optimize(
        h.topic_flow(),
        train=h.rows(0, 6),
        dev=h.rows(100, 8),
        metric=exact_match("label"),
        model=task_model,
        model_name=BIG,
        models=[SMALL],
        mutators=[ModelChoice()],
        search=BeamSearch(beam_width=2, depth=2, mutations_per_candidate=2),
        optimizer_model="none",
        holdout=0,
        minibatch=4,
        budget=Budget(calls=60),
        run_dir=run_dir,
        progress=False,
        **settings,
    )


def _model_of(flow: Flow) -> str | None:
    node = flow.nodes["classify"]
    assert isinstance(node, MicroPrompt)
    return node.params.model


def test_with_prices_the_cheaper_model_wins_at_equal_score(tmp_path: Path, small_model: SimulatedChatModel) -> None:
    same = SimulatedChatModel(task=h.TASK, name="big")  # scores as the small one does
    priced = _model_run(tmp_path / "priced", same, prices=PRICES, cost_weight=100.0)
    assert _model_of(priced.best) == SMALL and priced.best_score == priced.baseline_score
    assert priced.cost_unit == "dollars"
    # by tokens the two tie (the same prompt, the same replies): the seed stays
    unpriced = _model_run(tmp_path / "tokens", same, cost_weight=100.0)
    assert _model_of(unpriced.best) is None and unpriced.cost_unit == "tokens"


def test_the_front_is_saved_as_servable_artifacts(tmp_path: Path, small_model: SimulatedChatModel) -> None:
    big = SimulatedChatModel(task=h.TASK, name="big", bonus=0.5)  # better, and dearer
    run = tmp_path / "run"
    stale = run / "pareto" / "0123456789abcdef.json"  # an earlier run's front member
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    result = _model_run(run, big, prices=PRICES, margin=1.0)  # every child promoted: the small one is scored too
    assert not stale.exists()
    index = json.loads((run / "pareto" / "index.json").read_text())
    assert index["cost_unit"] == "dollars" and index["best_id"] == result.best_candidate.id
    front = index["front"]
    assert [e["id"] for e in front] == [p["id"] for p in result.pareto]
    assert len(front) == 2 and front[0]["dev"] > front[1]["dev"] and front[0]["cost_per_row"] > front[1]["cost_per_row"]
    assert [e["models"] for e in front] == [{"classify": BIG}, {"classify": SMALL}]
    assert [e["best"] for e in front] == [True, False]
    files = sorted(p.name for p in (run / "pareto").iterdir())
    assert files == sorted([*(f"{e['id']}.json" for e in front), "index.json"])
    for entry in front:
        assert entry["artifact"] == f"pareto/{entry['id']}.json"
        flow = Flow.load(run / entry["artifact"])
        out = flow.compile(model=big, caller=ModelCaller(cache=None)).invoke({"headline": "headline number 3"})
        assert out["label"] in h.LABELS
    summary = json.loads((run / "summary.json").read_text())
    assert summary["cost_unit"] == "dollars"
    assert [p["artifact"] for p in summary["pareto"]] == [e["artifact"] for e in front]
    page = (run / "report.html").read_text()
    assert "Which nodes can run on the small model" in page and "dollars per row (cost)" in page
    assert SMALL in page


def _journal(run_dir: Path) -> list[dict[str, Any]]:
    out = []
    for line in (run_dir / "journal.jsonl").read_text().splitlines():
        entry = json.loads(line)
        for key in ("elapsed", "seconds"):
            entry.pop(key, None)
        out.append(entry)
    return out


def test_a_price_of_one_per_token_retraces_the_tokens_run(tmp_path: Path) -> None:
    """Priced at 1e6 dollars per 1M tokens in and out, a row costs exactly its tokens: the same journal."""

    def run(path: Path, **settings: Any) -> OptimizeResult:
        return optimize(
            h.pipeline(),
            train=h.rows(0, 8),
            dev=h.rows(100, 8),
            metric=exact_match("label"),
            model=h.model(),
            search=BeamSearch(beam_width=2, depth=2, mutations_per_candidate=3),
            mutators=h.search_mutators(),
            optimizer_model="none",
            minibatch=4,
            budget=Budget(calls=60),
            cost_weight=0.002,
            run_dir=path,
            progress=False,
            **settings,
        )

    tokens = run(tmp_path / "tokens")
    priced = run(tmp_path / "priced", prices={"task": "1000000/1000000"}, model_name="task")
    assert _journal(tmp_path / "priced") == _journal(tmp_path / "tokens")
    assert [p["cost_per_row"] for p in priced.points] == [p["tokens_per_row"] for p in tokens.points]
    assert json.loads((tmp_path / "priced" / "run.json").read_text())["prices"] == {
        "task": {"input": 1e6, "output": 1e6, "second": 0.0}
    }
    assert "prices" not in json.loads((tmp_path / "tokens" / "run.json").read_text())
