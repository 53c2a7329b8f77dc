"""Robust selection: a child is accepted over its parent only on paired dev rows beyond the noise, and the winner is
chosen among the finalists re-scored on held-out dev rows, with calls the planner kept back for it."""

from __future__ import annotations

import random
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage

from microprompts.data import Row
from microprompts.evals import exact_match
from microprompts.optimizers import Budget, Enumerate, SearchSpace, one_of, optimize
from microprompts.optimizers.candidate import Candidate, Mutation, Pending, Record
from microprompts.optimizers.evaluator import keyed_rows
from microprompts.optimizers.finals import holdout_size, rank_finalists, split_holdout
from microprompts.optimizers.sampling import EngineRows, RowSampler
from microprompts.optimizers.selection import Paired, tied_at_cut
from microprompts.testing import ScriptedChatModel, parse_user
from tests.optimizers import engine_helpers as h

METRIC = exact_match("label")


def _number(messages: list[BaseMessage]) -> int:
    return int(str(parse_user(str(messages[1].content))["headline"]).split()[-1])


def row_model(right: Callable[[str, int], bool]) -> ScriptedChatModel:
    """A task model that labels row `n` right exactly when `right(system prompt, n)`."""

    def respond(messages: list[BaseMessage]) -> dict[str, Any]:
        n = _number(messages)
        label = h.LABELS[n % 4] if right(str(messages[0].content), n) else h.LABELS[(n + 1) % 4]
        return {"label": label}

    return ScriptedChatModel(replies=respond)


def test_the_paired_margin_shrinks_as_rows_add_up() -> None:
    win = Paired.of([1.0] + [0.0] * 9, [0.0] * 10)
    assert win.mean == 0.1 and abs(win.se - 0.1) < 1e-9 and win.beats(0.8) and not win.beats(1.0)
    lucky = [1.0, 1.0, 0.0] + [0.0] * 13  # two rows won, one lost, on 16 rows
    parent = [0.0, 0.0, 1.0] + [0.0] * 13
    assert not Paired.of(lucky, parent).beats(0.8)
    assert Paired.of(lucky * 4, parent * 4).beats(0.8)  # the same gain a row, on four times the rows
    assert Paired.of([1.0, 0.0], [0.0, 1.0]).tied and not Paired.of([], []).beats(0.0)


def _child(engine: Any, text: str) -> Pending:
    flow = engine.baseline.flow.set("classify.sections.task", text)
    flow.compile(caller=engine.caller)
    mutation = Mutation(operator="scripted", kind="content", address="classify.sections.task", after=text)
    candidate = Candidate(flow, parent=engine.baseline.id, mutation=mutation, generation=1)
    return Pending(candidate, "scripted", ["classify.sections.task"])


def test_paired_promotion_refuses_a_child_that_wins_only_on_a_lucky_minibatch() -> None:
    dev = h.rows(100, 16)
    minibatch = {int(k.split(":")[1]) for k, _ in h.engine(dev, h.model(), minibatch=4).sampler.minibatch()}
    outside = sorted(set(range(100, 116)) - minibatch)
    base = set(outside[:8]) | set(sorted(minibatch)[:1])  # the parent gets half of dev right
    lucky = (base | set(sorted(minibatch)[1:3])) - {outside[0]}  # two more on the minibatch, one fewer elsewhere
    steady = base | set(outside[8:11])  # three more, none fewer

    def right(system: str, n: int) -> bool:
        if "LUCKY" in system:
            return n in lucky
        return n in (steady if "STEADY" in system else base)

    engine = h.engine(dev, row_model(right), minibatch=4)
    assert engine.baseline.dev == 9 / 16
    [record] = engine.screen([_child(engine, "Classify the headline. LUCKY.")], engine.baseline)
    assert record.minibatch == 0.75 and record.dev == 10 / 16  # won its minibatch and dev by one row...
    assert record.accepted is False and engine.incumbent is engine.baseline  # ...which is noise: refused
    assert engine.journal.entries[-1]["accepted"] is False
    [record] = engine.screen([_child(engine, "Classify the headline. STEADY.")], engine.baseline)
    assert record.dev == 12 / 16 and record.accepted is True and engine.incumbent is record


def _children_tied_on_the_first_minibatch(tie_rung: int) -> tuple[Any, list[Record]]:
    """A parent right on a quarter of dev; SAME, the shorter prompt, right on the same rows; BETTER right on the same
    rows of the first screening minibatch and on every row outside it."""
    dev = h.rows(100, 24)
    first = {int(k.split(":")[1]) for k, _ in h.engine(dev, h.model(), minibatch=4).sampler.minibatch()}

    def right(system: str, n: int) -> bool:
        return n % 4 == 0 or ("BETTER" in system and n not in first)

    engine = h.engine(dev, row_model(right), minibatch=4, tie_rung=tie_rung)
    children = [_child(engine, "Label it. SAME."), _child(engine, "Classify the headline, then label it. BETTER.")]
    return engine, engine.screen(children, engine.baseline)


def test_a_tie_on_the_minibatch_is_settled_on_a_second_one_not_by_the_shorter_prompt() -> None:
    engine, (same, better) = _children_tied_on_the_first_minibatch(tie_rung=3)
    assert engine.baseline.dev == 6 / 24
    assert same.minibatch_n == better.minibatch_n == 8  # both went on to a second minibatch of 4 other rows
    assert better.minibatch is not None and same.minibatch is not None and better.minibatch > same.minibatch
    assert better.dev is not None and better.dev > 0.9 and better.accepted is True and same.dev is None
    assert [e["minibatch_n"] for e in engine.journal.entries[-2:]] == [8, 8]
    engine, (same, better) = _children_tied_on_the_first_minibatch(tie_rung=0)  # no rung: the shorter prompt goes
    assert same.minibatch_n == better.minibatch_n == 4 and same.dev == 6 / 24 and better.dev is None


def test_the_cut_finds_the_tie_it_falls_in() -> None:
    def cut(values: list[float], places: int) -> tuple[list[float], list[float]]:
        return tied_at_cut(values, places, float)

    assert cut([0.5, 0.25, 0.25, 0.25, 0.0], 2) == ([0.5], [0.25, 0.25, 0.25])
    assert cut([0.5, 0.25, 0.0], 2) == ([0.5, 0.25], [])  # the cut falls between two values
    assert cut([0.25, 0.25], 2) == ([0.25, 0.25], []) and cut([0.25, 0.25], 0) == ([], [])


def test_a_second_minibatch_avoids_the_first_and_keeps_the_label_proportions() -> None:
    labelled = [Row(inputs={"q": str(i)}, output={"a": "yes" if i % 3 else "no"}, id=str(i)) for i in range(30)]
    sampler = RowSampler(EngineRows(dev=keyed_rows("dev", labelled)), 6, random.Random(0))
    first = sampler.minibatch()
    second = sampler.minibatch(exclude={key for key, _ in first})
    assert len(second) == 6 and not {k for k, _ in first} & {k for k, _ in second}
    assert sorted(str(row.output) for _, row in second).count(str({"a": "no"})) == 2  # a third, as in dev
    assert len(sampler.minibatch(exclude={k for k, _ in keyed_rows("dev", labelled)[:27]})) == 3  # what is left


def _right_by_prompt(holdout: Collection[int]) -> Callable[[str, int], bool]:
    """The seed gets a quarter of the rows right; GOOD three quarters of every slice; LUCKY every row it is
    selected on and none of the held-out ones."""

    def right(system: str, n: int) -> bool:
        if "LUCKY" in system:
            return n not in holdout
        if "GOOD" in system:
            return n % 4 != 3
        return n % 4 == 0

    return right


def _holdout_numbers(dev: list[Row], seed: int = 0) -> set[int]:
    _, held = split_holdout(keyed_rows("dev", dev), 0.25, 5, seed)
    return {int(k.split(":")[1]) for k, _ in held}


def test_the_held_out_re_score_picks_the_known_best_where_dev_alone_picks_a_lucky_one(tmp_path: Path) -> None:
    dev = h.rows(100, 24)
    held = _holdout_numbers(dev)
    assert len(held) == holdout_size(24, 0.25, 5) == 6
    space = SearchSpace(h.topic_flow(), {"classify.sections.task": one_of("Label it. GOOD.", "Label it. LUCKY.")})
    run = dict(dev=dev, metric=METRIC, search=Enumerate(), progress=False, run_dir=tmp_path)
    model = row_model(_right_by_prompt(held))
    result = optimize(space, model=model, **run)  # type: ignore[arg-type]
    scored = {e["mutation"]["after"]["classify.sections.task"]: e for e in result.history if e.get("mutation")}
    assert scored["Label it. LUCKY."]["dev"] == 1.0 > scored["Label it. GOOD."]["dev"]  # dev alone: the lucky one
    assert scored["Label it. LUCKY."]["dev_n"] == 18  # the held-out rows never selected anything
    assert "GOOD" in result.best.nodes["classify"].section("task").text  # type: ignore[union-attr]
    [final] = [e for e in result.history if e["event"] == "final"]
    assert final["id"] == result.best_candidate.id and final["holdout_n"] == 6
    holdout = {f["id"]: f["holdout"] for f in final["finalists"]}
    assert holdout[scored["Label it. LUCKY."]["id"]] == 0.0
    assert holdout[result.best_candidate.id] == sum(n % 4 != 3 for n in held) / 6
    again = optimize(space, model=model, resume=True, **run)  # type: ignore[arg-type]
    assert again.best_candidate.id == result.best_candidate.id and again.usage["evaluations_run"] == 0


def test_the_planner_keeps_calls_back_for_the_held_out_re_score() -> None:
    dev = h.rows(100, 24)
    texts = [f"Label it. GOOD {i}." for i in range(6)]
    space = SearchSpace(h.topic_flow(), {"classify.sections.task": one_of(*texts)})
    model = row_model(_right_by_prompt(_holdout_numbers(dev)))
    result = optimize(
        space, dev=dev, metric=METRIC, model=model, search=Enumerate(), progress=False, budget=Budget(calls=80)
    )
    # 18 calls score one candidate on the selection rows; 4 x 6 = 24 are kept back: 2 of 6 alternatives fit.
    assert result.stopped is not None and "with 24 kept for the held-out re-score" in result.stopped
    assert sum(e["event"] == "candidate" for e in result.history) == 3
    [final] = [e for e in result.history if e["event"] == "final"]
    assert final["reason"] == "best on the held-out rows" and len(final["finalists"]) == 3
    assert all(f["holdout"] is not None for f in final["finalists"])
    assert result.usage["charged_calls"] == 18 * 3 + 6 * 3 <= 80


def test_finalists_rank_by_held_out_score_then_dev_and_ties_go_to_the_cheaper_prompt() -> None:
    flow = h.topic_flow()

    def record(holdout: float, objective: float, prompt: float) -> Record:
        r = Record(Candidate(flow), None, objective=objective, prompt_tokens_per_row=prompt)
        r.holdout = r.holdout_objective = holdout
        return r

    lucky, steady, long, short = record(0.2, 1.0, 50), record(0.8, 0.7, 90), record(0.8, 0.9, 120), record(0.8, 0.9, 80)
    assert rank_finalists([lucky, steady, long, short]) == [short, long, steady, lucky]
    assert rank_finalists([record(0.5, 0.5, 10)][:0]) == []
    assert [holdout_size(n, 0.25, 5) for n in (10, 19, 20, 40)] == [0, 0, 5, 10]
