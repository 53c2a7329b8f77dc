"""Search strategies on a simulated task whose best configuration is known; enumeration; bandit; Pareto front."""

from __future__ import annotations

import random

import pytest

from microprompts.data import Row
from microprompts.evals import exact_match
from microprompts.nodes import Section
from microprompts.optimizers import (
    BeamSearch,
    Budget,
    Enumerate,
    RegularizedEvolution,
    SearchSpace,
    one_of,
    optimize,
    optional,
)
from microprompts.optimizers.mutators.structure import DataFormat
from microprompts.optimizers.selection import Objective, OperatorBandit, pareto_front
from microprompts.optimizers.space import SpaceChoice
from tests.optimizers import engine_helpers as h

METRIC = exact_match("label")


def _run(search: object, seed: int, **kwargs: object) -> object:
    return optimize(
        h.topic_flow(),
        train=h.rows(0, 10),
        dev=h.rows(100, 10),
        metric=METRIC,
        model=h.model(),
        search=search,
        mutators=h.search_mutators(),
        seed=seed,
        minibatch=5,
        progress=False,
        **kwargs,
    )  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [0, 1])
def test_beam_search_finds_the_known_best(seed: int) -> None:
    result = _run(BeamSearch(beam_width=2, depth=5, mutations_per_candidate=4), seed)
    assert result.baseline_score < 0.5
    assert result.best_score == 1.0 and h.is_best(result.best)
    lineage = result.lineage
    assert lineage[0]["status"] == "baseline" and lineage[-1]["id"] == result.best_candidate.id


@pytest.mark.parametrize("seed", [0, 1])
def test_evolution_finds_the_known_best(seed: int) -> None:
    result = _run(RegularizedEvolution(population=4, sample_size=2, cycles=25), seed)
    assert result.best_score == 1.0 and h.is_best(result.best)


def test_successive_halving_screens_on_a_minibatch() -> None:
    result = _run(BeamSearch(beam_width=2, depth=2, mutations_per_candidate=4), 0)
    children = [e for e in result.history if e["event"] == "candidate" and e["status"] != "baseline"]
    # a child is screened on 5 rows; children tied at the promotion cut go on to the other 5 (the tie's rung)
    assert all(e["minibatch_n"] in (5, 10) and e["minibatch"] is not None for e in children)
    assert any(e["minibatch_n"] == 5 for e in children)
    screened = [e for e in children if e["status"] == "screened_out"]
    promoted = [e for e in children if e["status"] == "promoted"]
    assert screened and promoted
    assert all(e["dev"] is None for e in screened) and all(e["dev_n"] == 10 for e in promoted)


def test_minibatches_of_a_labelled_dev_set_keep_its_label_proportions() -> None:
    # 18 "sports" and 12 "business" rows: a random 8 of them holds 7 or 8 of one label about one draw in 14.
    dev = h.rows(0, 72)[0::4][:18] + h.rows(1, 48)[0::4]
    engine = h.engine(dev, h.model())
    assert engine.sampler.labels is not None
    for _ in range(200):
        labels = [row.output["label"] for _, row in engine.sampler.minibatch()]
        assert len(labels) == 8 and labels.count("sports") in (4, 5)  # 8 x 18/30 = 4.8
    first, second = h.engine(dev, h.model()), h.engine(dev, h.model())  # seeded: a resumed run draws the same ones
    assert [first.sampler.minibatch() for _ in range(3)] == [second.sampler.minibatch() for _ in range(3)]


def test_minibatches_of_a_free_text_dev_set_stay_plain_random_samples() -> None:
    dev = [Row(inputs=r.inputs, output={"label": f"{r.output['label']} {r.id}"}, id=r.id) for r in h.rows(0, 30)]
    engine = h.engine(dev, h.model())
    assert engine.sampler.labels is None  # 30 distinct expected outputs: not a class label
    rng = random.Random(0)
    assert [k for k, _ in engine.sampler.minibatch()] == [f"dev:{i}" for i in sorted(rng.sample(range(30), 8))]


def test_frozen_parts_never_change_in_a_run() -> None:
    result = _run(
        BeamSearch(beam_width=2, depth=3, mutations_per_candidate=4),
        0,
        frozen=["classify.params.data_format", "classify.task"],
    )
    assert result.best.nodes["classify"].params.data_format == "markdown"
    assert result.best.nodes["classify"].section("task") == h.CLASSIFY.section("task")
    for entry in result.history:
        assert "classify.params.data_format" not in entry.get("touched", [])
    assert result.best_score > result.baseline_score


def test_kinds_limit_the_operators() -> None:
    result = _run(BeamSearch(beam_width=1, depth=2, mutations_per_candidate=3), 0, kinds=["parameters"])
    kinds = {e["kind"] for e in result.history if e["event"] == "candidate" and e["kind"]}
    assert kinds <= {"parameters"}
    with pytest.raises(ValueError, match="unknown mutation kind"):
        _run("beam", 0, kinds=["bogus"])


def _space() -> SearchSpace:
    tip = Section(kind="guidelines", title="Guidelines", text="- Be exact.")
    return SearchSpace(
        h.topic_flow(),
        {
            "classify.params.data_format": one_of("markdown", "json", "xml"),
            "classify.output.reasoning": one_of(False, True),
            "classify.sections.guidelines": optional(tip),
        },
    )


def test_enumerate_covers_the_space() -> None:
    space = _space()
    assert space.size == 12
    combos = [labels for labels, _ in space.expand()]
    assert len(combos) == 12 and len({str(c) for c in combos}) == 12
    result = optimize(space, dev=h.rows(100, 6), metric=METRIC, model=h.model(), search="enumerate", progress=False)
    entries = [e for e in result.history if e["event"] == "candidate"]
    assert len(entries) == 12  # the baseline is one of the combinations: scored once, not twice
    assert all(e["dev_n"] == 6 for e in entries)
    best = result.best.nodes["classify"]
    assert best.params.data_format == "json" and best.params.reasoning
    assert len(result.pareto) >= 1


def test_enumerate_respects_frozen_and_limit() -> None:
    result = optimize(
        _space(),
        dev=h.rows(100, 4),
        metric=METRIC,
        model=h.model(),
        search=Enumerate(limit=5),
        frozen=["classify.sections.guidelines"],
        progress=False,
    )
    candidates = [e for e in result.history if e["event"] == "candidate"]
    rejected = [e for e in result.history if e["event"] == "rejected"]
    assert len(candidates) + len(rejected) == 5 and rejected
    assert all("frozen" in e["reason"] for e in rejected)


def test_default_space_and_space_choice_in_beam() -> None:
    assert SearchSpace.default(h.topic_flow()).size == 18  # 3 data formats x 3 reply formats x reasoning on/off
    space = _space()
    result = optimize(
        space,
        dev=h.rows(100, 6),
        metric=METRIC,
        model=h.model(),
        mutators=[],
        search=BeamSearch(beam_width=1, depth=3, mutations_per_candidate=3),
        minibatch=0,
        progress=False,
    )
    assert {e["operator"] for e in result.history if e["event"] == "candidate"} <= {None, "space_choice"}
    assert result.best_score > result.baseline_score
    assert SpaceChoice(space).addresses(space.flow)[-1] == "classify.sections"
    with pytest.raises(ValueError):
        SearchSpace(h.topic_flow(), {"classify.sections.bogus": one_of("x")})


def test_bandit_prefers_the_operator_that_wins() -> None:
    bandit = OperatorBandit(random.Random(0))
    names = ["a", "b", "c"]
    first = [bandit.choose(names) for _ in range(1)]
    assert first[0] in names
    for name in names:
        bandit.record(name, 1.0 if name == "b" else 0.0)
    picks = []
    for _ in range(30):
        name = bandit.choose(names)
        picks.append(name)
        bandit.record(name, 1.0 if name == "b" else 0.0)
    assert picks.count("b") > 20
    assert bandit.stats()["b"]["mean_reward"] == 1.0


def test_pareto_front_and_objective() -> None:
    points = [
        {"id": "a", "score": 0.9, "tokens_per_row": 300.0},
        {"id": "b", "score": 0.8, "tokens_per_row": 100.0},
        {"id": "c", "score": 0.7, "tokens_per_row": 200.0},
        {"id": "d", "score": 0.9, "tokens_per_row": 300.0},
    ]
    assert [p["id"] for p in pareto_front(points)] == ["a", "b"]
    assert Objective(0.001)(0.9, 300) == pytest.approx(0.6)


def test_cost_weight_prefers_cheaper_prompts() -> None:
    cheap = optimize(
        h.topic_flow(),
        dev=h.rows(100, 6),
        metric=METRIC,
        model=h.model(),
        mutators=[DataFormat()],
        search=BeamSearch(beam_width=1, depth=1, mutations_per_candidate=2),
        cost_weight=10.0,
        minibatch=0,
        progress=False,
    )
    assert cheap.best_candidate.id == cheap.baseline.id or cheap.best_score < 1.0
    tokens = {p["id"]: p["tokens_per_row"] for p in cheap.points}
    assert tokens[cheap.best_candidate.id] == min(tokens.values())


def test_bandit_tries_high_prior_operators_first_and_evidence_overrides_priors() -> None:
    bandit = OperatorBandit(random.Random(0), priors={"strong": 0.9, "weak": 0.1})
    names = ["weak", "other", "strong"]
    first = bandit.choose(names)
    assert first == "strong"
    bandit.record("strong", 0.0)
    assert bandit.choose(names) == "other"  # unknown prior 0.2 beats 0.1 among the untried
    for name in names:
        bandit.record(name, 1.0 if name == "weak" else 0.0)
    picks = []
    for _ in range(30):
        name = bandit.choose(names)
        picks.append(name)
        bandit.record(name, 1.0 if name == "weak" else 0.0)
    assert picks.count("weak") > 20
    assert bandit.stats()["strong"]["prior"] == 0.9


def test_minibatch_ties_go_to_the_operator_with_the_better_record() -> None:
    """Every prompt scores 1.0 here, so both children tie their parent on the minibatch: the one promoted to full
    dev is the higher-prior operator's (examples), not the cheaper child's (a data format)."""
    task = h.SimTask("always", answer=h.answer, labels=h.LABELS, base=1.0)
    result = optimize(
        h.topic_flow(),
        train=h.rows(0, 10),
        dev=h.rows(100, 10),
        metric=METRIC,
        model=h.SimulatedChatModel(task=task),
        mutators=[h.DataFormat(), h.ChooseExamples()],
        search=BeamSearch(beam_width=1, depth=1, mutations_per_candidate=2),
        minibatch=5,
        progress=False,
    )
    children = [e for e in result.history if e["event"] == "candidate" and e["status"] != "baseline"]
    assert sorted(e["operator"] for e in children) == ["choose_examples", "data_format"]
    assert all(e["minibatch"] == 1.0 for e in children)
    promoted = [e["operator"] for e in children if e["status"] == "promoted"]
    assert promoted == ["choose_examples"]


def test_enumerate_skips_a_combination_the_calls_left_cannot_score_and_goes_on() -> None:
    space = SearchSpace(
        h.topic_flow(),
        {
            "classify.params.samples": one_of(5, 1),
            "classify.params.temperature": one_of(0.7),
            "classify.params.data_format": one_of("markdown", "json"),
        },
    )
    model = h.model()
    result = optimize(
        space,
        dev=h.rows(100, 4),
        metric=METRIC,
        model=model,
        search="enumerate",
        budget=Budget(calls=30),
        progress=False,
    )
    scored = [e["mutation"]["after"] for e in result.history if e["event"] == "candidate" and e["mutation"]]
    skipped = [e for e in result.history if e["event"] == "skipped"]
    assert len(skipped) == 1 and "fewer than the 20" in skipped[0]["reason"]  # 5 samples x 4 rows; 6 calls left
    assert [(s["classify.params.samples"], s["classify.params.data_format"]) for s in scored] == [
        (5, "markdown"),
        (1, "markdown"),
        (1, "json"),
    ]  # the single-sample ones after it were still scored
    assert model.call_count == result.usage["charged_calls"] <= 30
