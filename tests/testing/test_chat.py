"""The chat-model doubles: the scripted model records and replays; the simulator is deterministic and rewards
exactly the prompt properties its task names."""

from __future__ import annotations

from typing import Literal

import pytest
from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel

from microprompts import CallCache, Example, Flow, MicroPrompt, ModelCaller, evaluate
from microprompts.nodes import Runtime
from microprompts.testing import (
    ScriptedChatModel,
    SimTask,
    SimulatedChatModel,
    contains,
    data_format,
    detect_format,
    has_examples,
    min_examples,
    parse_user,
    reasoning_on,
    temperature_zero,
)

LABELS = ["sports", "business", "world", "tech"]


class Topic(BaseModel):
    label: Literal["sports", "business", "world", "tech"]


def true_label(inputs: dict) -> dict:
    return {"label": LABELS[sum(map(ord, inputs["headline"])) % 4]}


ROWS = [
    {"inputs": {"headline": f"headline number {i}"}, "output": true_label({"headline": f"headline number {i}"})}
    for i in range(60)
]
SPORTS = Example(inputs={"headline": "Cup final tonight"}, output={"label": "sports"})
NODE = MicroPrompt(
    "topic", task="Give the headline's topic.", inputs={"headline": "A news headline."}, output=Topic, examples=[SPORTS]
)
BOOSTS = [
    has_examples(0.3),
    contains("one word", 0.2),
    data_format("json", 0.1),
    reasoning_on(0.1),
    temperature_zero(0.1),
]


def task(**kw) -> SimTask:
    return SimTask("topic", answer=true_label, labels=LABELS, **{"base": 0.1, "boosts": BOOSTS, **kw})


def accuracy(node: MicroPrompt, model: SimulatedChatModel) -> float:
    metric = lambda ex, pred: pred["label"] == ex["output"]["label"]  # noqa: E731
    return evaluate(Flow("f").then(node), ROWS, metric, model=model, caller=ModelCaller(cache=None)).score


# --- scripted ---------------------------------------------------------------------------------------------------
def test_scripted_replays_in_order_and_records_calls():
    model = ScriptedChatModel(replies=["one", {"a": 1}])
    assert model.invoke("hi", temperature=0.3).content == "one"
    assert model.invoke("ho").content == '{"a": 1}'
    assert [c.user for c in model.calls] == ["hi", "ho"] and model.calls[0].temperature == 0.3
    with pytest.raises(AssertionError, match="ran out of replies"):
        model.invoke("again")


def test_scripted_raises_exceptions_cycles_and_repeats():
    with pytest.raises(KeyError):
        ScriptedChatModel(replies=[KeyError("x")]).invoke("hi")
    cyc = ScriptedChatModel(replies=["a", "b"], cycle=True)
    assert [cyc.invoke("q").content for _ in range(3)] == ["a", "b", "a"]
    rep = ScriptedChatModel(replies=["a", "b"], repeat_last=True)
    assert [rep.invoke("q").content for _ in range(3)] == ["a", "b", "b"]


def test_scripted_reports_usage_and_a_per_instance_identity():
    model = ScriptedChatModel(replies=["x"], usage={"input_tokens": 4, "output_tokens": 2})
    assert model.invoke("q").usage_metadata == {"input_tokens": 4, "output_tokens": 2, "total_tokens": 6}
    assert ScriptedChatModel().identity() != ScriptedChatModel().identity()
    assert ScriptedChatModel(name="n").identity() == ScriptedChatModel(name="n").identity()


# --- simulated --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["markdown", "xml", "json"])
def test_the_simulator_reads_inputs_back_in_every_data_format(fmt):
    inputs = {"headline": "Rain: more to come", "tags": ["a", "b"], "body": "line one\nline two"}
    node = MicroPrompt("n", task="t", inputs=list(inputs), data_format=fmt)
    user = node.render(inputs)[1].content
    assert detect_format(user) == fmt
    assert parse_user(user) == inputs


def test_identity_is_stable_for_a_configuration_and_differs_between_them():
    assert SimulatedChatModel(task=task()).identity() == SimulatedChatModel(task=task()).identity()
    assert SimulatedChatModel(task=task()).identity() != SimulatedChatModel(task=task(base=0.2)).identity()
    assert SimulatedChatModel(task=task()).identity() != SimulatedChatModel(task=task(), bonus=0.1).identity()


def test_answers_are_deterministic():
    node = NODE.with_params(n_examples=0)
    assert accuracy(node, SimulatedChatModel(task=task())) == accuracy(node, SimulatedChatModel(task=task()))


def test_chance_is_base_plus_satisfied_gains_capped_at_one():
    sim = SimulatedChatModel(task=task())
    messages = NODE.with_params(data_format="json", reasoning=True).render({"headline": "x"})
    params = sim.params_of(messages, {"temperature": 0.0})
    assert sim.satisfied(messages[0].content, params) == [
        "has examples",
        "data_format == json",
        "reasoning field on",
        "temperature 0",
    ]
    assert sim.chance(messages[0].content, params) == pytest.approx(0.1 + 0.3 + 0.1 + 0.1 + 0.1)
    assert SimulatedChatModel(task=task(base=0.9)).chance(messages[0].content, params) == 1.0


def test_each_boost_raises_accuracy_on_its_own():
    sim = SimulatedChatModel(task=task())
    plain = NODE.with_params(n_examples=0, temperature=0.5)
    base = accuracy(plain, sim)
    assert 0.0 < base < 0.35
    phrase = plain.replace(
        sections=[
            s.model_copy(update={"text": s.text + " Answer in one word."}) if s.kind == "task" else s
            for s in plain.sections
        ]
    )
    for better in (
        plain.with_params(n_examples=1),
        phrase,
        plain.with_params(data_format="json"),
        plain.with_params(reasoning=True),
        plain.with_params(temperature=0.0),
    ):
        assert accuracy(better, sim) > base


def test_the_simulator_is_monotone_by_default():
    sim = SimulatedChatModel(task=task())
    metric = lambda ex, pred: pred["label"] == ex["output"]["label"]  # noqa: E731
    worse = evaluate(
        Flow("f").then(NODE.with_params(n_examples=0)), ROWS, metric, model=sim, caller=ModelCaller(cache=None)
    )
    better = evaluate(Flow("f").then(NODE), ROWS, metric, model=sim, caller=ModelCaller(cache=None))
    assert all(b.score >= w.score for b, w in zip(better.rows, worse.rows, strict=True))
    assert better.score > worse.score


def test_prompt_noise_redraws_per_prompt():
    sim = SimulatedChatModel(task=task(base=0.5, boosts=[]), prompt_noise=True)
    a = NODE.with_params(n_examples=0)
    b = a.replace(
        sections=[
            s.model_copy(update={"text": "Topic of the headline?"}) if s.kind == "task" else s for s in a.sections
        ]
    )
    metric = lambda ex, pred: pred["label"] == ex["output"]["label"]  # noqa: E731
    ra = evaluate(Flow("f").then(a), ROWS, metric, model=sim, caller=ModelCaller(cache=None))
    rb = evaluate(Flow("f").then(b), ROWS, metric, model=sim, caller=ModelCaller(cache=None))
    assert [r.score for r in ra.rows] != [r.score for r in rb.rows]


def test_wrong_answers_are_plausible_labels_that_still_parse():
    sim = SimulatedChatModel(task=task(base=0.0, boosts=[]))
    result = evaluate(Flow("f").then(NODE), ROWS[:10], model=sim, caller=ModelCaller(cache=None))
    assert result.errors == 0
    for row in result.rows:
        assert row.prediction["label"] in LABELS and row.prediction != true_label(row.inputs)


def test_custom_wrong_answers_and_raw_mode():
    raw = SimTask(
        "echo",
        answer=lambda text: {"output": text.upper()},
        raw=True,
        base=0.0,
        wrong=lambda text, correct: {"output": "?"},
    )
    node = MicroPrompt("echo", task="Shout.", inputs=["q"])
    sim = SimulatedChatModel(task=raw)
    assert node.run({"q": "hi"}, _runtime(sim)) == {"output": "?"}
    assert node.run({"q": "hi"}, _runtime(SimulatedChatModel(task=raw, bonus=1.0))) == {"output": "Q: HI"}


def test_samples_at_temperature_vary_by_seed_and_vote():
    sim = SimulatedChatModel(task=task(base=0.5, boosts=[]))
    node = NODE.with_params(n_examples=0, temperature=0.9, samples=5)
    per_row = [
        {sim.reply_for(node.render(r["inputs"]), temperature=0.9, seed=s)["label"] for s in range(5)} for r in ROWS[:5]
    ]
    assert any(len(labels) > 1 for labels in per_row)
    greedy = [
        {sim.reply_for(node.render(r["inputs"]), temperature=0.0, seed=s)["label"] for s in range(5)} for r in ROWS[:5]
    ]
    assert all(len(labels) == 1 for labels in greedy)
    result = evaluate(Flow("f").then(node), ROWS[:5], model=sim, caller=ModelCaller(cache=None))
    assert result.usage.calls == 25 and result.errors == 0


def test_min_examples_counts_example_headings():
    stocks = Example(inputs={"headline": "Stocks up"}, output={"label": "business"})
    two = NODE.replace(examples=[*NODE.examples, stocks])
    sim = SimulatedChatModel(task=task(boosts=[min_examples(2, 0.5)]))
    params = lambda m: sim.params_of(m, {})  # noqa: E731
    assert params(NODE.render({"headline": "x"})).n_examples == 1
    assert params(two.render({"headline": "x"})).n_examples == 2
    assert sim.satisfied(two.render({"headline": "x"})[0].content, params(two.render({"headline": "x"})))


def test_the_simulator_works_with_the_call_cache(tmp_path):
    sim = SimulatedChatModel(task=task())
    cache = CallCache(tmp_path / "c.sqlite")
    first = evaluate(Flow("f").then(NODE), ROWS[:10], model=sim, caller=ModelCaller(cache=cache))
    again = evaluate(
        Flow("f").then(NODE), ROWS[:10], model=SimulatedChatModel(task=task()), caller=ModelCaller(cache=cache)
    )
    assert first.usage.calls == 10 and again.usage.calls == 0
    assert [r.prediction for r in again.rows] == [r.prediction for r in first.rows]


def _runtime(model: BaseChatModel) -> Runtime:
    return Runtime(model=model, caller=ModelCaller(cache=None))
