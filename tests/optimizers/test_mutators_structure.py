"""The no-model mutators (section structure, examples, phrase edits, parameters): every child is a valid flow that
changes only what its operator declares and nothing frozen."""

from __future__ import annotations

import random
from typing import Any

import pytest

from microprompts.evals import EvalResult, evaluate, exact_match
from microprompts.flows import Flow
from microprompts.flows.address import check_mutation, touched
from microprompts.models import ModelCaller
from microprompts.nodes import Example, MicroPrompt
from microprompts.optimizers.candidate import Candidate
from microprompts.optimizers.mutators import MutationContext, default_mutators, no_model_mutators
from microprompts.optimizers.mutators._text import with_section_text
from microprompts.optimizers.mutators.examples import BootstrapExamples, ChooseExamples, ExampleCount
from microprompts.optimizers.mutators.params import ModelChoice, Samples, Temperature
from microprompts.optimizers.mutators.phrases import DeleteSentence, SwapSentences, join_units, split_units
from microprompts.optimizers.mutators.structure import AddGuideline, DropSection, ReorderSections, ReplyFormat
from tests.optimizers import engine_helpers as h

METRIC = exact_match("label")


def _rich() -> Flow:
    mp = h.CLASSIFY.replace(
        examples=[
            Example(inputs={"headline": "headline number 1"}, output={"label": "business"}),
            Example(inputs={"headline": "headline number 2"}, output={"label": "world"}),
        ]
    )
    mp = MicroPrompt(
        "classify",
        task="Classify the headline. Pick one section. Be careful.",
        guidelines=["Read it all.", "Answer briefly."],
        inputs=dict(mp.inputs),
        output=h.Topic,
        examples=list(mp.examples),
    )
    return Flow("topic_rich").then(mp)


def _mate(flow: Flow) -> Flow:
    """Another pool member for `flow`: each micro-prompt with another task, two examples and a temperature."""
    for mp in flow.micro_prompts():
        examples = [Example(inputs={k: f"x {i}" for k in mp.inputs}, output={"label": "world"}) for i in range(2)]
        flow = flow.replace_node(mp.replace(examples=examples).with_params(temperature=0.3))
        flow = with_section_text(flow, mp.name, "task", f"Another way to do {mp.name}.")
    return flow


def _ctx(
    seed: int = 0,
    evaluation: EvalResult | None = None,
    frozen: tuple[str, ...] = (),
    models: tuple[str, ...] = (),
    pool: tuple[Flow, ...] = (),
) -> MutationContext:
    return MutationContext(
        train=h.rows(0, 10),
        metric=METRIC,
        rng=random.Random(seed),
        evaluation=evaluation,
        frozen=frozen,
        models=models,
        pool=pool,
    )


def _evaluation(flow: Flow) -> EvalResult:
    return evaluate(flow, h.rows(0, 10), METRIC, model=h.model(), caller=ModelCaller(cache=None), concurrency=1)


FLOWS = {"rich": _rich, "pipeline": h.pipeline, "plain": h.topic_flow}


@pytest.mark.parametrize("flow_name", sorted(FLOWS))
@pytest.mark.parametrize("mutator", no_model_mutators(), ids=lambda m: m.name)
def test_children_are_valid_and_touch_only_what_is_declared(mutator: Any, flow_name: str) -> None:
    flow = FLOWS[flow_name]()
    candidate = Candidate(flow)
    evaluation = _evaluation(flow) if mutator.needs_evaluation else None
    made = 0
    for seed in range(3):
        ctx = _ctx(seed, evaluation, models=("openai:small", "openai:big"), pool=(_mate(flow),))
        for child, mutation in mutator.propose(candidate, ctx, n=3):
            child.validate()
            child.compile(caller=ModelCaller(cache=None))
            diff = check_mutation(flow, child, mutator.addresses(flow))
            assert diff, f"{mutator.name} proposed an unchanged flow"
            assert mutation.operator == mutator.name and mutation.kind == mutator.kind
            assert any(a == mutation.address or a.startswith(mutation.address) for a in diff)
            assert Candidate(child).id != candidate.id
            made += 1
    if mutator.addresses(flow):
        # calibrate needs a task model that gives log-probabilities (tests/optimizers/test_calibrate.py has one)
        quiet = {
            "bootstrap_examples",
            "choose_examples",
            "nearest_examples",
            "delete_sentence",
            "swap_sentences",
            "calibrate",
        }
        assert made or mutator.name in quiet


@pytest.mark.parametrize("mutator", no_model_mutators(), ids=lambda m: m.name)
def test_frozen_parts_never_change(mutator: Any) -> None:
    flow = _rich()
    evaluation = _evaluation(flow) if mutator.needs_evaluation else None
    for pattern in ("classify", "classify.sections.*", "classify.params.*", "classify.examples"):
        for seed in range(3):
            ctx = _ctx(seed, evaluation, frozen=(pattern,), models=("openai:small",), pool=(_mate(flow),))
            for child, _ in mutator.propose(Candidate(flow), ctx, n=5):
                check_mutation(flow, child, mutator.addresses(flow), frozen=(pattern,))


def test_drop_section_never_drops_the_core() -> None:
    flow = _rich()
    kinds = set()
    for child, mutation in DropSection().propose(Candidate(flow), _ctx(), n=20):
        kinds.add(mutation.before["kind"])
        assert {s.kind for s in child.nodes["classify"].sections} >= {"task", "inputs", "output_format"}
    assert kinds == {"examples", "guidelines"}


def test_reorder_keeps_the_same_sections() -> None:
    flow = _rich()
    children = ReorderSections().propose(Candidate(flow), _ctx(), n=50)
    assert len(children) > 5
    for child, _ in children:
        assert sorted(s.model_dump_json() for s in child.nodes["classify"].sections) == sorted(
            s.model_dump_json() for s in flow.nodes["classify"].sections
        )
        assert touched(flow, child) == {"classify.sections"}


def test_add_guideline_creates_or_extends_the_section() -> None:
    plain = h.topic_flow()
    child, mutation = AddGuideline().propose(Candidate(plain), _ctx(), n=1)[0]
    assert child.nodes["classify"].section("guidelines").text == f"- {mutation.note}"
    child, mutation = AddGuideline().propose(Candidate(_rich()), _ctx(), n=1)[0]
    text = child.nodes["classify"].section("guidelines").text
    assert text.startswith("- Read it all.") and text.endswith(mutation.note)


def test_example_count_and_choice() -> None:
    flow = _rich()
    counts = {
        child.nodes["classify"].params.n_examples for child, _ in ExampleCount().propose(Candidate(flow), _ctx(), n=10)
    }
    assert counts == {0, 1}
    assert ExampleCount().propose(Candidate(h.topic_flow()), _ctx(), n=3) == []
    train_inputs = {r.inputs["headline"] for r in h.rows(0, 10)}
    for child, _ in ChooseExamples().propose(Candidate(h.topic_flow()), _ctx(), n=4):
        mp = child.nodes["classify"]
        assert mp.section("examples") is not None and 0 < len(mp.shown_examples()) <= 3
        assert {e.inputs["headline"] for e in mp.examples} <= train_inputs
    assert ChooseExamples().propose(Candidate(h.pipeline()), _ctx(), n=4) == []  # the data does not label it


def test_bootstrap_uses_only_rows_the_flow_got_right_per_node() -> None:
    flow = h.pipeline()
    evaluation = _evaluation(flow)
    right = {r.inputs["headline"] for r in evaluation.rows if r.score >= 1.0}
    assert right and len(right) < 10
    children = BootstrapExamples().propose(Candidate(flow), _ctx(evaluation=evaluation), n=4)
    assert children
    for child, _ in children:
        mp = child.nodes["label_it"]
        assert set(mp.examples[0].inputs) == {"clean"} and set(mp.examples[0].output) == {"label"}
        assert {e.inputs["clean"] for e in mp.examples} <= right
    assert BootstrapExamples().propose(Candidate(flow), _ctx(), n=4) == []


def test_phrase_edits() -> None:
    units, seps = split_units("One. Two!\n- three\nFour?")
    assert units == ["One.", "Two!", "- three", "Four?"]
    assert join_units(units, seps) == "One. Two!\n- three\nFour?"
    flow = _rich()
    task = flow.nodes["classify"].section("task").text
    deleted = {
        c.nodes["classify"].section("task").text
        for c, m in DeleteSentence().propose(Candidate(flow), _ctx(), n=30)
        if m.address.endswith("task")
    }
    assert deleted == {
        "Pick one section. Be careful.",
        "Classify the headline. Be careful.",
        "Classify the headline. Pick one section.",
    }
    for child, mutation in SwapSentences().propose(Candidate(flow), _ctx(), n=30):
        if mutation.address.endswith("task"):
            assert sorted(split_units(child.nodes["classify"].section("task").text)[0]) == sorted(split_units(task)[0])


def test_parameter_mutators() -> None:
    flow = h.topic_flow()
    assert ModelChoice().propose(Candidate(flow), _ctx(), n=3) == []
    specs = {
        c.nodes["classify"].params.model
        for c, _ in ModelChoice().propose(Candidate(flow), _ctx(models=("openai:a", "openai:b")), n=5)
    }
    assert specs == {"openai:a", "openai:b"}
    for child, _ in Samples().propose(Candidate(flow), _ctx(), n=5):
        p = child.nodes["classify"].params
        assert p.samples > 1 and p.temperature > 0
    voting = flow.replace_node(flow.nodes["classify"].with_params(samples=3, temperature=0.7))
    temps = {c.nodes["classify"].params.temperature for c, _ in Temperature().propose(Candidate(voting), _ctx(), n=9)}
    assert 0.0 not in temps and temps


def test_default_mutators_have_unique_names_and_respect_the_optimizer_flag() -> None:
    without = default_mutators(False)
    with_model = default_mutators(True)
    assert len({m.name for m in without}) == len(without)
    assert {m.name for m in no_model_mutators()} <= {m.name for m in without}
    assert len(with_model) >= len(without)


def test_reply_format_switches_json_lines_and_markers_and_the_child_still_answers() -> None:
    flow = h.topic_flow()
    children = ReplyFormat().propose(Candidate(flow), _ctx(), n=3)
    assert sorted(m.after for _, m in children) == ["lines", "markers"]
    child, mutation = next((c, m) for c, m in children if m.after == "lines")
    assert (mutation.address, mutation.before) == ("classify.params.reply_format", "json")
    assert touched(flow, child) == {"classify.params.reply_format"}
    assert (
        "label: <your label>  (The headline's section.)"
        in child.nodes["classify"].render({"headline": "headline number 1"})[0].content
    )
    back = ReplyFormat().propose(Candidate(child), _ctx(), n=3)
    assert sorted(m.after for _, m in back) == ["json", "markers"]
    assert _evaluation(child).errors == 0
    marked = next(c for c, m in children if m.after == "markers")
    assert _evaluation(marked).errors == 0
