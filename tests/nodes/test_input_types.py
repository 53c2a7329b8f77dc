"""Typed inputs of a micro-prompt: every form `inputs=` takes, the JSON Schema kept for each, the check of a
row's values at run time, rendering left as it was, and schemas that are not plain JSON types refused."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

from microprompts import MicroPrompt, ModelCaller
from microprompts.nodes import NodeInputError, Runtime
from microprompts.nodes.input_types import InputTypeError, python_type, split_inputs
from microprompts.testing import ScriptedChatModel

SEATS_SCHEMA = {"type": "array", "items": {"type": "string"}}


class Picked(BaseModel):
    seat: str


class SeatInputs(BaseModel):
    """The inputs of the seat node, as one model."""

    preferences: str = Field(description="The traveler's preferences.")
    available_seats: list[str] = Field(description="Seat ids.")


@pytest.mark.parametrize(
    "spec",
    [
        (list[str], "Seat ids."),
        (list[str], Field(description="Seat ids.")),
        Annotated[list[str], "Seat ids."],
        Annotated[list[str], Field(description="Seat ids.")],
    ],
    ids=["pair", "field-pair", "annotated", "annotated-field"],
)
def test_each_typed_form_keeps_the_description_and_the_json_schema(spec: Any):
    mp = MicroPrompt("pick", task="Pick.", inputs={"preferences": "Prefs.", "available_seats": spec}, output=Picked)
    assert mp.inputs == {"preferences": "Prefs.", "available_seats": "Seat ids."}
    assert mp.input_schemas == {"available_seats": SEATS_SCHEMA}  # the untyped input carries no schema
    assert mp.input_types() == {"available_seats": list[str]}


def test_a_pydantic_model_declares_every_input_with_its_description():
    mp = MicroPrompt("pick", task="Pick.", inputs=SeatInputs, output=Picked)
    assert mp.inputs == {"preferences": "The traveler's preferences.", "available_seats": "Seat ids."}
    assert mp.input_schemas == {"preferences": {"type": "string"}, "available_seats": SEATS_SCHEMA}


def test_a_bare_type_is_a_typed_input_without_description():
    mp = MicroPrompt("count", task="Count.", inputs={"n": int, "mode": Literal["fast", "slow"]})
    assert mp.inputs == {"n": "", "mode": ""}
    assert mp.input_schemas == {"n": {"type": "integer"}, "mode": {"enum": ["fast", "slow"], "type": "string"}}


def test_replacing_inputs_keeps_the_types_of_the_inputs_kept():
    mp = MicroPrompt("pick", task="Pick.", inputs=SeatInputs, output=Picked)
    edited = mp.replace(inputs={**mp.inputs, "available_seats": "Seat ids, reworded.", "extra": "More."})
    assert edited.inputs["available_seats"] == "Seat ids, reworded."
    assert edited.input_schemas == mp.input_schemas  # an optimizer's new descriptions do not drop the types
    dropped = mp.replace(inputs={"preferences": "Prefs."})
    assert dropped.input_schemas == {"preferences": {"type": "string"}}


@pytest.mark.parametrize("kind", [set[str], tuple[int, str], Picked.__new__, type("Plain", (), {})])
def test_types_that_are_not_plain_json_are_refused_with_the_input_named(kind: Any):
    with pytest.raises(ValueError, match="input 'weird'"):
        MicroPrompt("bad", task="Bad.", inputs={"weird": (kind, "A weird input.")})


def test_rendering_of_typed_inputs_is_unchanged():
    plain = MicroPrompt("pick", task="Pick.", inputs={"preferences": "Prefs.", "available_seats": "Seat ids."})
    typed = MicroPrompt(
        "pick", task="Pick.", inputs={"preferences": "Prefs.", "available_seats": (list[str], "Seat ids.")}
    )
    row = {"preferences": "window", "available_seats": ["economy_14A_window", "economy_14C_aisle"]}
    assert [m.content for m in typed.render(row)] == [m.content for m in plain.render(row)]


def test_running_a_node_on_a_badly_typed_input_fails_naming_the_input_before_any_call():
    mp = MicroPrompt("pick", task="Pick.", inputs=SeatInputs, output=Picked)
    model = ScriptedChatModel(replies=['{"seat": "economy_14A_window"}'])
    runtime = Runtime(model=model, caller=ModelCaller(cache=None, base_delay=0.0))
    with pytest.raises(NodeInputError, match=r"available_seats.*valid list"):
        mp.run({"preferences": "window", "available_seats": "nope"}, runtime)
    assert model.calls == []
    assert mp.run({"preferences": "window", "available_seats": ["economy_14A_window"]}, runtime) == {
        "seat": "economy_14A_window"
    }


def test_problems_name_the_input_and_the_place_inside_it():
    mp = MicroPrompt("nums", task="Sum.", inputs={"xs": (list[int], "Numbers."), "note": "Free text."})
    assert mp.input_problems({"xs": [1, 2], "note": 5}) == []  # untyped node inputs take any value
    [problem] = mp.input_problems({"xs": [1, "2"]})
    assert problem.startswith("input 'xs'[1]: Input should be a valid integer")


# --- schemas from artifacts: plain JSON types only -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "string"}, str),
        ({"type": "number"}, float),
        ({"type": "integer"}, int),
        ({"type": "boolean"}, bool),
        ({"type": "array", "items": {"type": "integer"}}, list[int]),
        ({"type": "object"}, dict[str, Any]),
        ({"type": "object", "additionalProperties": {"type": "string"}}, dict[str, str]),
        ({"anyOf": [{"type": "string"}, {"type": "null"}]}, str | None),
    ],
)
def test_plain_json_schemas_become_python_types(schema: dict[str, Any], expected: Any):
    assert python_type(schema) == expected


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#/$defs/Evil"},
        {"type": "object", "x-python": "os.system"},
        {"type": "function"},
        {"type": ["string", "null"]},
        {"type": "array", "items": "builtins.eval"},
        {"enum": [{"__import__": "os"}]},
        {"type": "string", "maxLength": "os.system('touch pwned')"},
        "subprocess.Popen",
    ],
)
def test_schemas_outside_plain_json_are_refused(schema: Any):
    with pytest.raises(InputTypeError):
        python_type(schema, "x")


def test_deeply_nested_schemas_are_refused():
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(20):
        schema = {"type": "array", "items": schema}
    with pytest.raises(InputTypeError, match="deeper"):
        python_type(schema)


def test_inputs_of_the_wrong_shape_are_refused():
    with pytest.raises(InputTypeError):
        split_inputs(42)  # type: ignore[arg-type]
