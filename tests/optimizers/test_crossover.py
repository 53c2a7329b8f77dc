"""Crossover (sections of one pool member, examples of the other; nodes of each in a multi-node flow) and the
weak-seed start (a weak seed's first expansions try `calibrate`, where a node has labels, then `induce`)."""

from __future__ import annotations

import random
from typing import Any

from microprompts.evals import exact_match
from microprompts.flows import Flow
from microprompts.flows.address import check_mutation
from microprompts.models import CallCache
from microprompts.nodes import Example, MicroPrompt
from microprompts.optimizers.budget import Budget, BudgetedCaller, BudgetTracker
from microprompts.optimizers.candidate import Candidate
from microprompts.optimizers.engine import Engine, EngineRows, EngineSettings, Proposers
from microprompts.optimizers.evaluator import Evaluator, keyed_rows
from microprompts.optimizers.journal import Journal
from microprompts.optimizers.mutators import MutationContext
from microprompts.optimizers.mutators._text import with_section_text
from microprompts.optimizers.mutators.content import InduceInstruction
from microprompts.optimizers.mutators.crossover import Crossover
from microprompts.optimizers.mutators.examples import with_examples
from microprompts.optimizers.selection import OperatorBandit, majority_share, weak_seed, weak_seed_start
from microprompts.testing import ScriptedChatModel
from tests.optimizers import engine_helpers as h

METRIC = exact_match("label")


def _two_node() -> Flow:
    """Two micro-prompts: headline -> clean -> label."""
    tidy = MicroPrompt("tidy", task="Tidy the headline.", inputs={"headline": "A news headline."}, output=h.Cleaned)
    label = MicroPrompt("label_it", task="Label the cleaned headline.", inputs={"clean": "It."}, output=h.Topic)
    return Flow("two").then(tidy).then(label)


def _edit(flow: Flow, node: str, task: str, examples: list[Example] | None = None) -> Flow:
    flow = with_section_text(flow, node, "task", task)
    if examples is not None:
        mp = flow.nodes[node]
        assert isinstance(mp, MicroPrompt)
        flow = flow.replace_node(mp.replace(examples=examples))
    return flow


def _ctx(pool: tuple[Flow, ...], seed: int = 0, frozen: tuple[str, ...] = ()) -> MutationContext:
    return MutationContext(train=h.rows(0, 10), metric=METRIC, rng=random.Random(seed), frozen=frozen, pool=pool)


def _task(flow: Flow, node: str) -> str:
    mp = flow.nodes[node]
    assert isinstance(mp, MicroPrompt)
    section = mp.section("task")
    assert section is not None
    return section.text


def _all(parent: Flow, pool: tuple[Flow, ...], **kw: Any) -> list[tuple[Flow, Any]]:
    return Crossover().propose(Candidate(parent), _ctx(pool, **kw), n=50)


def test_crossover_merges_nodes_of_two_members_and_never_copies_either() -> None:
    a = _edit(_edit(_two_node(), "tidy", "A tidies."), "label_it", "A labels.")
    b = _edit(_edit(_two_node(), "tidy", "B tidies."), "label_it", "B labels.")
    children = _all(a, (b,))
    pairs = {(_task(c, "tidy"), _task(c, "label_it")) for c, _ in children}
    assert pairs == {("B tidies.", "A labels."), ("A tidies.", "B labels.")}
    for child, mutation in children:
        assert child.content_hash() not in {a.content_hash(), b.content_hash()}
        check_mutation(a, child, Crossover().addresses(a))
        assert Candidate(b).id in mutation.note and mutation.operator == "crossover"


def test_crossover_takes_the_sections_of_one_and_the_examples_of_the_other() -> None:
    shown = [Example(inputs={"headline": f"headline number {i}"}, output={"label": h.LABELS[i % 4]}) for i in range(2)]
    a = _edit(h.topic_flow(), "classify", "A classifies.")
    b = _edit(h.topic_flow(), "classify", "B classifies.", shown)
    children = _all(a, (b,))
    got = {(_task(c, "classify"), len(c.nodes["classify"].shown_examples())) for c, _ in children}  # type: ignore[union-attr]
    assert got == {("A classifies.", 2)}  # B's sections with A's examples would be B's flow (A shows none)
    child = children[0][0]
    assert child.nodes["classify"].section("examples") is not None  # type: ignore[union-attr]
    a2 = _edit(a, "classify", "A classifies.", shown[:1])
    got = {(_task(c, "classify"), len(c.nodes["classify"].shown_examples())) for c, _ in _all(a2, (b,))}  # type: ignore[union-attr]
    assert got == {("A classifies.", 2), ("B classifies.", 1)}


def test_crossover_proposes_nothing_without_a_pool_or_against_itself() -> None:
    a = _edit(_two_node(), "tidy", "A tidies.")
    assert _all(a, ()) == []
    assert _all(a, (a,)) == []


def test_crossover_leaves_frozen_parts_alone() -> None:
    a = _edit(_edit(_two_node(), "tidy", "A tidies."), "label_it", "A labels.")
    b = _edit(_edit(_two_node(), "tidy", "B tidies."), "label_it", "B labels.")
    for frozen in (("tidy",), ("tidy.task",), ("label_it.sections.*",)):
        children = _all(a, (b,), frozen=frozen)
        assert [_task(c, "label_it") for c, _ in children] == (
            ["A labels."] if frozen[0].startswith("label") else ["B labels."]
        )
        for child, _ in children:
            check_mutation(a, child, Crossover().addresses(a), frozen)
    assert _all(a, (b,), frozen=("tidy", "label_it")) == []


def test_crossover_skips_a_node_whose_inputs_differ() -> None:
    a = _edit(_two_node(), "label_it", "A labels.")
    mp = a.nodes["label_it"]
    assert isinstance(mp, MicroPrompt)
    b = _edit(a.replace_node(mp.replace(inputs={"clean": "It.", "headline": "The raw one."})), "tidy", "B tidies.")
    b = _edit(b, "label_it", "B labels.")
    children = _all(a, (b,))
    assert [(_task(c, "tidy"), _task(c, "label_it")) for c, _ in children] == [("B tidies.", "A labels.")]


def test_the_weak_seed_rule() -> None:
    labels = [h.rows(i, 1)[0] for i in (0, 4, 8, 1)]  # three "sports", one "business"
    assert majority_share(labels, labels) == 0.75
    assert majority_share(h.rows(0, 3), h.rows(0, 3)) is None  # no output repeats: no common answer
    assert weak_seed(0.4, [], []) and not weak_seed(0.6, [], [])
    assert weak_seed(0.7, labels, labels) and not weak_seed(0.8, labels, labels)
    assert weak_seed(0.75, labels, labels)  # a tie with the constant answer shows nothing of the task
    assert not weak_seed(1.0, labels[:3], labels[:3])  # every dev row is the common answer: nothing to beat


def _engine(seed_flow: Flow, dev_n: int = 20) -> Engine:
    tracker = BudgetTracker(Budget(calls=200))
    caller = BudgetedCaller(CallCache(None), tracker, "task")
    optimizer = ScriptedChatModel(
        replies=lambda _: {"instruction": "Classify the headline: sports, business, world or tech."}
    )
    return Engine(
        seed_flow,
        rows=EngineRows(dev=keyed_rows("dev", h.rows(0, dev_n)), train=keyed_rows("train", h.rows(100, 12))),
        evaluator=Evaluator(METRIC, h.model(), caller, tracker),
        journal=Journal(None, False),
        proposers=Proposers(
            mutators=[*h.search_mutators(), InduceInstruction()],
            model=optimizer,
            caller=BudgetedCaller(CallCache(None), tracker, "optimizer"),
        ),
        settings=EngineSettings(seed=0, minibatch=4, holdout=0.0),
    )


def test_a_weak_seed_first_tries_induce() -> None:
    engine = _engine(h.topic_flow())
    engine.start()
    assert engine.baseline.dev is not None and engine.baseline.dev < 0.5
    children = engine.expand(engine.baseline, 2)
    assert children[0].operator == "induce"
    assert children[1].operator != "induce"


def test_a_strong_seed_keeps_the_bandits_order() -> None:
    bandit = OperatorBandit(random.Random(0))
    names = ["choices", "induce", "data_format"]
    assert not weak_seed_start(bandit, 0.9, h.rows(0, 8), h.rows(0, 8), names)
    plain = OperatorBandit(random.Random(0))
    assert [bandit.choose(names) for _ in range(3)] == [plain.choose(names) for _ in range(3)]
    assert weak_seed_start(bandit, 0.1, [], [], names) and bandit.choose(names) == "induce"
    assert not weak_seed_start(OperatorBandit(random.Random(0)), 0.1, [], [], ["choices"])  # no induce: no change
    both = OperatorBandit(random.Random(0))
    assert weak_seed_start(both, 0.1, [], [], ["choices", "induce", "calibrate"])
    assert [both.choose(["choices", "induce", "calibrate"]) for _ in range(2)] == ["calibrate", "induce"]


def test_a_strong_seed_engine_starts_as_before() -> None:
    mp, _ = with_examples(h.CLASSIFY, [Example(inputs={"headline": "headline number 1"}, output={"label": "business"})])
    strong = Flow("topic").then(mp.with_params(data_format="json", reasoning=True))
    engine = _engine(strong)
    engine.start()
    assert engine.baseline.dev == 1.0 and not engine.bandit.preferred
    assert engine.expand(engine.baseline, 1)[0].operator != "induce"


def test_a_weak_seeds_first_moves_win_ties_until_their_first_outcome() -> None:
    bandit = OperatorBandit(random.Random(0))
    assert bandit.prior("calibrate") < bandit.prior("choices")
    assert bandit.standing("choices") < bandit.standing("calibrate")  # by the priors alone
    assert weak_seed_start(bandit, 0.1, [], [], ["choices", "calibrate"])
    assert bandit.standing("calibrate") < bandit.standing("choices")  # the run's judgement of its seed, not a prior
    bandit.choose(["choices", "calibrate"])
    assert bandit.standing("calibrate") < bandit.standing("choices")  # chosen, but no outcome yet
    bandit.record("calibrate", 0.0)
    assert bandit.standing("choices") < bandit.standing("calibrate")  # its record speaks for it now
