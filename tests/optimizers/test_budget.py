"""Budgets and the evaluator: limits hold, repeats are free, a candidate is never evaluated twice."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from pydantic import BaseModel

from microprompts.evals import exact_match
from microprompts.flows import Flow
from microprompts.models import CallCache, ModelCaller
from microprompts.nodes import MicroPrompt
from microprompts.optimizers import Budget, BudgetExceeded, optimize
from microprompts.optimizers.budget import BudgetedCaller, BudgetTracker, call_key
from microprompts.optimizers.candidate import Candidate, Mutation, Pending
from microprompts.optimizers.engine import Engine
from microprompts.optimizers.evaluator import Evaluator, keyed_rows
from microprompts.optimizers.mutators.graph import Vote
from microprompts.optimizers.mutators.structure import DataFormat, ToggleReasoning
from microprompts.optimizers.planner import CallPlanner
from microprompts.testing import ScriptedChatModel
from tests.optimizers import engine_helpers as h


class Note(BaseModel):
    note: str


METRIC = exact_match("label")


def test_tracker_charges_new_requests_once_and_stops_at_the_limit() -> None:
    tracker = BudgetTracker(Budget(calls=2, optimizer_calls=1))
    assert tracker.reserve("task", "a") is True
    assert tracker.reserve("task", "a") is False  # a repeat within the run is free
    assert tracker.reserve("task", "b") is True
    with pytest.raises(BudgetExceeded, match="2 task-model calls"):
        tracker.reserve("task", "c")
    assert tracker.reserve("task", "a") is False  # repeats stay free after the limit
    assert tracker.reserve("optimizer", "a") is True  # roles are counted apart
    with pytest.raises(BudgetExceeded, match="optimizer-model"):
        tracker.reserve("optimizer", "z")
    with tracker.exempted():
        assert tracker.reserve("task", "d") is True
    assert tracker.total.task_calls == 3 and tracker.exhausted == {"task", "optimizer"}


def test_tracker_scope_and_replay_line_up() -> None:
    first = BudgetTracker(Budget(tokens=100))
    with first.scope() as charge:
        first.reserve("task", "k1")
        first.add_tokens("task", 60)
        first.reserve("task", "k2")
        first.add_tokens("task", 50)
    with pytest.raises(BudgetExceeded, match="100 tokens"):
        first.reserve("task", "k3")
    second = BudgetTracker(Budget(tokens=100))
    second.replay(charge)
    assert second.total.task_calls == 2 and second.total.task_tokens == 110
    assert second.reserve("task", "k1") is False
    with pytest.raises(BudgetExceeded):
        second.reserve("task", "k3")


def test_budgeted_caller_caches_truncated_replies_under_the_callers_key(tmp_path: Path) -> None:
    cache = CallCache(tmp_path / "c.sqlite")
    model = ScriptedChatModel(replies=["cut off"], finish_reason="length")
    caller = BudgetedCaller(cache, BudgetTracker(Budget()), "task")
    messages = [HumanMessage(content="hi")]
    first = caller.complete(model, messages, max_tokens=5)
    assert first.finish_reason == "length" and not first.cached
    key = call_key(model, messages, None, 0.0, 5, 0)
    assert cache.get(key) is not None
    again = ModelCaller(cache=cache).complete(model, messages, max_tokens=5)  # the plain caller finds it too
    assert again.cached and again.text == "cut off" and model.call_count == 1


@pytest.mark.parametrize("calls", [5, 17, 40])
def test_calls_budget_holds(calls: int) -> None:
    model = h.model()
    result = (
        optimize(
            h.topic_flow(),
            train=h.rows(0, 8),
            dev=h.rows(100, 8),
            metric=METRIC,
            model=model,
            mutators=h.search_mutators(),
            budget=Budget(calls=calls),
            minibatch=4,
            concurrency=4,
            progress=False,
        )
        if calls > 8
        else None
    )
    if result is None:
        with pytest.raises(BudgetExceeded, match="before the baseline"):
            optimize(
                h.topic_flow(),
                train=h.rows(0, 8),
                dev=h.rows(100, 8),
                metric=METRIC,
                model=model,
                budget=Budget(calls=calls),
                progress=False,
            )
        assert model.call_count <= calls
        return
    assert model.call_count <= calls
    assert result.usage["charged_calls"] <= calls
    assert result.stopped and "budget" in result.stopped


def test_tracker_require_refuses_work_the_calls_left_cannot_finish() -> None:
    tracker = BudgetTracker(Budget(calls=10))
    for key in "abcdef":
        tracker.reserve("task", key)
    assert tracker.calls_left() == 4 and tracker.calls_left("optimizer") is None
    tracker.require(4, "calls a dev pass takes")  # exactly enough: no error, nothing charged
    with pytest.raises(BudgetExceeded, match="4 task-model calls left, fewer than the 5 calls a dev pass takes"):
        tracker.require(5, "calls a dev pass takes")
    assert tracker.total.task_calls == 6 and "task" in tracker.exhausted
    with tracker.exempted():
        assert tracker.calls_left() is None


def test_a_childs_row_costs_a_call_per_sample_of_each_micro_prompt_it_changed() -> None:
    flow = h.topic_flow()
    voted = flow.replace_node(flow.nodes["classify"].with_params(samples=5, temperature=0.7))
    assert CallPlanner.row_calls(Candidate(voted), ["classify.params.samples", "classify.params.temperature"]) == 5
    assert CallPlanner.row_calls(Candidate(flow), ["classify.sections.task"]) == 1
    assert CallPlanner.row_calls(Candidate(h.pipeline()), ["graph.edges", "tidy.fn"]) == 1  # no micro-prompt: 1


def test_a_childs_row_also_costs_the_micro_prompts_that_read_what_it_changed() -> None:
    explain = MicroPrompt(
        "explain",
        task="Say why the headline has this section.",
        inputs={"headline": "A news headline.", "label": "Its section."},
        output=Note,
        samples=3,
    )
    flow = h.topic_flow().then(explain)  # classify -> explain (a 3-sample vote) reads its label
    assert CallPlanner.row_calls(Candidate(flow), ["classify.sections.task"]) == 1 + 3
    assert CallPlanner.row_calls(Candidate(flow), ["explain.sections.task"]) == 3  # nothing reads explain's note
    assert CallPlanner.row_calls(Candidate(h.pipeline()), ["tidy.fn"]) == 1  # label_it reads the function's output


@pytest.mark.parametrize("search", ["beam", "evolution"])
@pytest.mark.parametrize(("calls", "vote"), [(23, False), (40, False), (61, False), (70, True), (130, True)])
def test_search_does_not_start_a_candidate_it_cannot_score_on_dev(
    search: str, calls: int, vote: bool, tmp_path: Path
) -> None:
    dev = 8
    model = h.model()
    mutators = [Vote(ks=(5,)), *h.search_mutators()] if vote else h.search_mutators()
    result = optimize(
        h.topic_flow(),
        train=h.rows(0, 8),
        dev=h.rows(100, dev),
        test=h.rows(200, 4),
        metric=METRIC,
        model=model,
        mutators=mutators,
        search=search,
        budget=Budget(calls=calls),
        minibatch=3,
        run_dir=tmp_path / "run",
        progress=False,
    )
    assert result.stopped and "fewer than" in result.stopped
    spent = result.usage["search_calls"]
    if not vote:
        assert calls - spent < dev  # it stopped only when a dev pass no longer fitted
    assert spent <= calls and model.call_count == result.usage["charged_calls"]
    assert 0 < result.usage["charged_calls"] - spent <= 4 * (1 + 5)  # test: seed and best (a vote of 5) on 4 rows
    kept = [json.loads(line) for line in (tmp_path / "run" / "evaluations.jsonl").read_text().splitlines()]
    assert sum(k["charge"]["task_calls"] for k in kept) == model.call_count  # no paid evaluation was cut off
    candidates = [e for e in result.history if e["event"] == "candidate" and e["status"] != "baseline"]
    assert candidates and all(e["minibatch_n"] in (3, 6) for e in candidates)  # 6: a tie's second minibatch


def test_tokens_budget_overshoots_by_at_most_the_calls_in_flight() -> None:
    model = h.model()
    concurrency = 4
    result = optimize(
        h.topic_flow(),
        train=h.rows(0, 8),
        dev=h.rows(100, 8),
        metric=METRIC,
        model=model,
        mutators=h.search_mutators(),
        budget=Budget(tokens=6000),
        concurrency=concurrency,
        minibatch=4,
        progress=False,
    )
    per_call = max(c for c in [sum(len(str(m.content)) for m in call.messages) // 4 + 40 for call in model.calls])
    assert result.usage["charged_tokens"] <= 6000 + concurrency * per_call
    assert result.stopped and "tokens" in result.stopped


class _SameChild:
    """A mutator that always proposes the same child."""

    name = "same"
    kind = "structure"
    needs_evaluation = False

    def addresses(self, flow: Flow) -> list[str]:
        return ["classify.params.data_format"]

    def propose(self, candidate: Candidate, ctx: Any, n: int = 1) -> list[tuple[Flow, Mutation]]:
        base = h.topic_flow()
        child = base.replace_node(base.nodes["classify"].with_params(data_format="json"))
        return [(child, Mutation(operator=self.name, kind="structure", address="classify.params.data_format"))]


def test_a_candidate_seen_twice_is_not_evaluated_twice() -> None:
    model = h.model()
    result = optimize(
        h.topic_flow(),
        train=h.rows(0, 8),
        dev=h.rows(100, 8),
        metric=METRIC,
        model=model,
        mutators=[_SameChild(), ToggleReasoning()],
        minibatch=0,
        progress=False,
    )
    ids = [e["id"] for e in result.history if e["event"] == "candidate"]
    assert len(ids) == len(set(ids))
    assert result.usage["evaluations_run"] == len(ids)
    requests = [call_key(model, c.messages, None, 0.0, 256, 0) for c in model.calls]
    assert len(requests) == len(set(requests))  # no request was ever sent twice


def test_evaluator_runs_only_missing_rows_and_is_thread_safe(tmp_path: Path) -> None:
    model = h.model()
    tracker = BudgetTracker(Budget())
    caller = BudgetedCaller(CallCache(tmp_path / "c.sqlite"), tracker, "task")
    evaluator = Evaluator(METRIC, model, caller, tracker, concurrency=3)
    candidate = Candidate(h.topic_flow())
    dev = keyed_rows("dev", h.rows(0, 6))
    evaluator.run(candidate, dev[:3])
    assert model.call_count == 3
    full = evaluator.run(candidate, dev)
    assert model.call_count == 6 and full.n == 6 and [r.index for r in full.rows] == list(range(6))
    evaluator.run(candidate, list(reversed(dev)))
    assert model.call_count == 6 and evaluator.live_runs == 2
    assert threading.active_count() >= 1


def test_optimizer_budget_disables_only_the_model_based_operators() -> None:
    optimizer = ScriptedChatModel(replies=["nope"], repeat_last=True)

    class AsksModel(DataFormat):
        name = "asks_model"

        def propose(self, candidate: Candidate, ctx: Any, n: int = 1) -> list[tuple[Flow, Mutation]]:
            ctx.caller.complete(ctx.optimizer_model, [HumanMessage(content=f"idea {ctx.rng.random()}")])
            return super().propose(candidate, ctx, n)

    result = optimize(
        h.topic_flow(),
        train=h.rows(0, 8),
        dev=h.rows(100, 8),
        metric=METRIC,
        model=h.model(),
        optimizer_model=optimizer,
        mutators=[AsksModel(), ToggleReasoning(), h.search_mutators()[2]],
        budget=Budget(optimizer_calls=2),
        minibatch=4,
        progress=False,
    )
    assert optimizer.call_count == 2
    assert result.usage["optimizer_calls"] == 2
    operators = {e["operator"] for e in result.history if e["event"] == "candidate"}
    assert {"toggle_reasoning", "choose_examples"} & operators


def _engine(tmp_path: Path, calls: int, model: Any) -> Engine:
    """An engine on the topic task: 8 dev rows, a 2-row minibatch, and a margin that promotes every child."""
    return h.engine(
        h.rows(100, 8), model, budget=Budget(calls=calls), cache=tmp_path / "c.sqlite", minibatch=2, margin=1.0
    )


def _child(engine: Engine, touched: list[str], operator: str = "test", **params: Any) -> Pending:
    flow = h.topic_flow()
    child = flow.replace_node(flow.nodes["classify"].with_params(**params))
    mutation = Mutation(operator=operator, kind="parameters", address=touched[0])
    return Pending(Candidate(child, parent=engine.baseline.id, mutation=mutation, generation=1), operator, touched)


def test_promotion_skips_a_child_the_calls_left_cannot_finish_and_promotes_a_cheaper_one(tmp_path: Path) -> None:
    model = h.model()
    engine = _engine(tmp_path, 48, model)  # 8 for the baseline; 40 left
    vote = _child(engine, ["classify.params.samples", "classify.params.temperature"], samples=5, temperature=0.7)
    cheap = _child(engine, ["classify.params.data_format"], data_format="json")
    records = engine.screen([vote, cheap], engine.baseline)  # screening takes 10 + 2: 28 left
    by_id = {r.id: r for r in records}
    assert by_id[vote.candidate.id].dev is None  # its 6 more rows take 30 calls
    assert by_id[cheap.candidate.id].dev is not None  # 6 calls: it still fits after the vote is passed over
    skipped = [e for e in engine.journal.entries if e.get("event") == "skipped"]
    assert [e["id"] for e in skipped] == [vote.candidate.id] and "fewer than the 30" in skipped[0]["reason"]
    assert model.call_count == engine.tracker.total.task_calls == 8 + 12 + 6


def test_promotion_costs_a_child_by_what_its_minibatch_charged(tmp_path: Path) -> None:
    model = h.model()
    engine = _engine(tmp_path, 47, model)  # 39 left after the baseline
    # the change's address names no micro-prompt, so the static estimate is one call a row; each row took five
    hidden = _child(engine, ["graph.edges"], samples=5, temperature=0.7)
    assert CallPlanner.row_calls(hidden.candidate, hidden.touched) == 1
    [record] = engine.screen([hidden], engine.baseline)
    assert record.dev is None and record.status == "screened_out"  # its 6 more rows take 30 calls; 29 are left
    assert model.call_count == engine.tracker.total.task_calls  # nothing was cut off mid-run


def test_promotion_finishes_the_best_screened_child_first_when_the_calls_left_finish_one(tmp_path: Path) -> None:
    model = h.model()
    # 16 dev rows for the baseline; 24 left: screening two on 8 rows takes 16, finishing one 8 more
    engine = h.engine(h.rows(100, 16), model, budget=Budget(calls=40), cache=tmp_path / "c.sqlite", margin=1.0)
    worse = _child(engine, ["classify.params.temperature"], temperature=0.7)
    better = _child(
        engine, ["classify.params.data_format", "classify.params.reasoning"], data_format="json", reasoning=True
    )
    records = engine.screen([worse, better], engine.baseline)  # the worse one first, as the proposals came
    by_id = {r.id: r for r in records}
    w, b = by_id[worse.candidate.id], by_id[better.candidate.id]
    assert (b.minibatch or 0.0) > (w.minibatch or 0.0)
    assert b.dev is not None and w.dev is None  # the calls left went to the better one
    skipped = [e["id"] for e in engine.journal.entries if e.get("event") == "skipped"]
    assert skipped == [worse.candidate.id]


def test_a_tie_on_the_minibatch_goes_to_a_weak_seeds_first_move_when_the_calls_left_finish_one(tmp_path: Path) -> None:
    model = h.model()
    engine = h.engine(h.rows(100, 16), model, budget=Budget(calls=40), cache=tmp_path / "c.sqlite", margin=1.0)
    first = _child(engine, ["classify.params.data_format"], "choices", data_format="json")
    later = _child(engine, ["classify.params.reasoning"], "calibrate", reasoning=True)  # the same chance: rows tie
    engine.bandit.prefer("calibrate")  # as `weak_seed_start` does for a weak seed with a label field
    records = engine.screen([first, later], engine.baseline)
    by_id = {r.id: r for r in records}
    f, c = by_id[first.candidate.id], by_id[later.candidate.id]
    assert f.minibatch == c.minibatch and engine.bandit.prior("choices") > engine.bandit.prior("calibrate")
    assert c.dev is not None and f.dev is None  # by the priors alone, `choices` would have taken the calls
