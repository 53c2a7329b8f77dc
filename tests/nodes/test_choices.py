"""Per-row choice constraints: output values must come from an input's list."""

from __future__ import annotations

import random

import pytest
from pydantic import BaseModel

from microprompts import Flow, MicroPrompt, ModelCaller
from microprompts.evals import EvalResult, RowResult
from microprompts.models import Usage
from microprompts.nodes import NodeTrace, OutputParseError
from microprompts.optimizers.candidate import Candidate
from microprompts.optimizers.mutators.base import MutationContext
from microprompts.optimizers.mutators.choices import Choices
from microprompts.testing import ScriptedChatModel


class Pick(BaseModel):
    picks: list[str]


def node(**params: object) -> MicroPrompt:
    return MicroPrompt(
        "pick", task="Pick two.", inputs={"options": "Options.", "note": "A note."}, output=Pick, **params
    )


def test_schema_gets_a_per_row_enum_from_the_input() -> None:
    mp = node(choices={"picks": "options"})
    schema = mp.output_schema({"options": ["a", "b", "a"], "note": "x"})
    assert schema["properties"]["picks"]["items"] == {"type": "string", "enum": ["a", "b"]}
    assert "enum" not in str(mp.output_schema())  # no inputs, no enum


def test_prompt_says_values_are_copied_from_the_input() -> None:
    system = node(choices={"picks": "options"}).render({"options": ["a"], "note": "x"})[0].content
    assert "must be copied exactly from options" in system


def test_invented_value_is_repaired_then_accepted() -> None:
    model = ScriptedChatModel(replies=['{"picks": ["zzz"]}', '{"picks": ["b"]}'])
    flow = Flow("f").then(node(choices={"picks": "options"}))
    out = flow.compile(model=model, caller=ModelCaller()).invoke({"options": ["a", "b"], "note": "x"})
    assert out["picks"] == ["b"]
    assert "not one of the values in 'options'" in model.calls[1].messages[-1].content


def test_invented_value_twice_raises_with_the_raw_reply() -> None:
    model = ScriptedChatModel(replies=['{"picks": ["zzz"]}', '{"picks": ["yyy"]}'])
    flow = Flow("f").then(node(choices={"picks": "options"}))
    with pytest.raises(OutputParseError, match="yyy"):
        flow.compile(model=model, caller=ModelCaller()).invoke({"options": ["a", "b"], "note": "x"})


def test_choices_mutator_proposes_list_inputs_only_and_can_lift() -> None:
    flow = Flow("f").then(node())
    ctx = MutationContext(
        train=[{"inputs": {"options": ["a", "b"], "note": "x"}}], metric=lambda e, p: 1.0, rng=random.Random(0)
    )
    children = Choices().propose(Candidate(flow), ctx, n=5)
    assert [m.after for _, m in children] == [{"picks": "options"}]
    child = children[0][0]
    assert child.nodes["pick"].params.choices == {"picks": "options"}
    lifted = Choices().propose(Candidate(child), ctx, n=5)
    assert [m.after for _, m in lifted] == [{}]


def test_choices_mutator_respects_frozen() -> None:
    flow = Flow("f").then(node())
    ctx = MutationContext(
        train=[{"inputs": {"options": ["a"], "note": "x"}}],
        metric=lambda e, p: 1.0,
        rng=random.Random(0),
        frozen=["pick.params.*"],
    )
    assert Choices().propose(Candidate(flow), ctx, n=5) == []


def test_constrained_string_fields_can_take_choices() -> None:
    from typing import Annotated

    from pydantic import Field

    from microprompts.optimizers.mutators.choices import choice_fields

    class Ids(BaseModel):
        ids: list[Annotated[str, Field(pattern="^[a-z]+$")]] = Field(max_length=3)
        one: Annotated[str, Field(min_length=1)]
        count: int

    mp = MicroPrompt("ids", task="t", inputs={"options": "o"}, output=Ids)
    assert choice_fields(mp) == ["ids", "one"]


def _ctx(train: list[dict[str, object]], evaluation: EvalResult | None = None) -> MutationContext:
    return MutationContext(train=train, metric=lambda e, p: 1.0, rng=random.Random(0), evaluation=evaluation)


def test_choices_is_proposed_only_where_the_gold_values_were_seen_in_the_list() -> None:
    flow = Flow("f").then(node())
    drawn = [{"inputs": {"options": ["a", "b"], "note": "x"}, "output": {"picks": ["b"]}}]
    never = [
        {"inputs": {"options": ["add 3 and 4", "double it"], "note": "x"}, "output": {"picks": ["(3 + 4) * 2"]}},
        {"inputs": {"options": ["a", "b"], "note": "x"}, "output": {"picks": ["a", "c"]}},  # one invented id
    ]
    assert [m.after for _, m in Choices().propose(Candidate(flow), _ctx(drawn + never), n=5)] == [{"picks": "options"}]
    assert Choices().propose(Candidate(flow), _ctx(never), n=5) == []


def test_without_gold_the_nodes_own_traced_outputs_are_the_evidence() -> None:
    flow = Flow("f").then(node())
    inputs = {"options": ["step one", "step two"], "note": "x"}

    def run(picks: list[str]) -> EvalResult:
        trace = NodeTrace(node="pick", kind="micro_prompt", inputs=inputs, output={"picks": picks})
        row = RowResult(index=0, inputs=inputs, expected={"answer": "7"}, traces=[trace])
        return EvalResult(score=0.0, n=1, errors=0, rows=[row], usage=Usage(), seconds=0.0)

    assert Choices().propose(Candidate(flow), _ctx([], run(["3 + 4"])), n=5) == []
    assert [m.after for _, m in Choices().propose(Candidate(flow), _ctx([], run(["step two"])), n=5)] == [
        {"picks": "options"}
    ]
