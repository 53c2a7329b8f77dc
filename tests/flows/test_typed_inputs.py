"""Typed inputs through a flow: the generated state schema (and LangGraph's input JSON schema), the artifact's
round trip, old untyped artifacts, hostile types in an artifact, and a row's inputs checked against the types."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from microprompts import Flow, FlowValidationError, FunctionNode, MicroPrompt, ModelCaller
from microprompts.flows import ArtifactError, content_hash
from microprompts.flows.state_types import input_problems
from microprompts.nodes import NodeInputError
from microprompts.testing import ScriptedChatModel


class Seats(BaseModel):
    recommended_seats: list[str] = Field(description="Seat ids, best first.")


class Prefs(BaseModel):
    window: bool
    rows: list[int] = []


def seat_flow(**typed: Any) -> Flow:
    inputs: dict[str, Any] = {"preferences": "The traveler's preferences.", "available_seats": "Seat ids."}
    inputs.update(typed)
    recommend = MicroPrompt("recommend", task="Pick seats.", inputs=inputs, output=Seats)
    return Flow("seats").then(recommend)


TYPED = {"available_seats": (list[str], "Seat ids.")}
ROW = {"preferences": "window", "available_seats": ["economy_14A_window", "economy_14C_aisle"]}


def test_the_compiled_graph_input_schema_shows_the_types():
    schema = seat_flow(**TYPED).compile().get_input_jsonschema()
    props = schema["properties"]
    assert props["preferences"]["type"] == "string"  # untyped: a string
    assert props["available_seats"]["type"] == "array"
    assert props["available_seats"]["items"] == {"type": "string"}


def test_the_state_schema_types_outputs_by_their_output_fields():
    schema = seat_flow(**TYPED).compile().get_output_jsonschema()
    assert schema["properties"]["recommended_seats"]["type"] == "array"


def test_a_user_state_type_wins_over_the_nodes_declarations():
    class State(BaseModel):
        preferences: int = 0
        available_seats: list[str] = []
        recommended_seats: list[str] = []

    flow = Flow("seats", state=State).then(seat_flow().nodes["recommend"])
    assert flow.input_types() == {"preferences": int, "available_seats": list[str]}


def test_two_nodes_typing_one_input_differently_are_reported():
    first = MicroPrompt("a", task="A.", inputs={"x": (list[str], "X.")}, output=Seats)
    second = MicroPrompt("b", task="B.", inputs={"x": (int, "X.")}, output=Prefs)
    flow = Flow("clash").add(first).add(second).edge("__start__", "a").edge("__start__", "b")
    with pytest.raises(FlowValidationError, match="'a' and 'b' declare input 'x' with different types"):
        flow.validate()


def test_an_untyped_reader_does_not_clash_with_a_typed_one():
    first = MicroPrompt("a", task="A.", inputs={"x": (list[str], "X.")}, output=Seats)
    second = MicroPrompt("b", task="B.", inputs={"x": "X."}, output=Prefs)
    flow = Flow("two").add(first).add(second).edge("__start__", "a").edge("__start__", "b").validate()
    assert flow.input_types() == {"x": list[str]}


# --- artifacts --------------------------------------------------------------------------------------------------
def test_types_round_trip_through_the_artifact(tmp_path: Path):
    flow = seat_flow(**TYPED, prefs=(Prefs, "Structured preferences."))
    data = flow.to_dict()
    assert data["nodes"][0]["input_types"]["available_seats"] == {"type": "array", "items": {"type": "string"}}
    path = tmp_path / "seats.json"
    recorded = flow.save(str(path))
    loaded = Flow.load(str(path))
    node = loaded.nodes["recommend"]
    assert isinstance(node, MicroPrompt)
    assert node.input_schemas == flow.nodes["recommend"].input_schemas  # type: ignore[union-attr]
    assert loaded.content_hash() == recorded
    assert loaded.input_problems({**ROW, "prefs": {"window": True, "rows": [3]}}) == []
    assert loaded.input_problems({**ROW, "prefs": {"window": "yes"}}) != []


def test_an_untyped_flow_writes_the_artifact_it_always_wrote():
    node = seat_flow().to_dict()["nodes"][0]
    assert "input_types" not in node
    assert list(node) == ["kind", "name", "sections", "inputs", "output", "examples", "params"]


def test_an_old_artifact_without_types_loads_with_string_inputs():
    data = seat_flow(**TYPED).to_dict()
    del data["nodes"][0]["input_types"]  # as written before inputs had types
    data["content_hash"] = content_hash(data)
    flow = Flow.from_dict(data)
    assert flow.nodes["recommend"].input_schemas == {}  # type: ignore[union-attr]
    assert flow.input_types() == {"preferences": str, "available_seats": str}


@pytest.mark.parametrize(
    "types",
    [
        {"available_seats": {"$ref": "tests.serve._side_effect:fn"}},
        {"available_seats": {"type": "object", "x-python-type": "tests.serve._side_effect:fn"}},
        {"available_seats": {"type": "tests.serve._side_effect:fn"}},
        {"available_seats": "tests.serve._side_effect:fn"},
        {"available_seats": {"type": "array", "items": {"type": "string", "default_factory": "os:system"}}},
        {"not_an_input": {"type": "string"}},
        ["tests.serve._side_effect:fn"],
    ],
)
def test_a_hostile_type_in_an_artifact_is_refused_and_imports_nothing(tmp_path: Path, types: Any):
    data = seat_flow(**TYPED).to_dict()
    data["nodes"][0]["input_types"] = types
    data["content_hash"] = content_hash(data)  # recomputed, as an attacker would
    sys.modules.pop("tests.serve._side_effect", None)
    with pytest.raises(ArtifactError):
        Flow.from_dict(json.loads(json.dumps(data)))
    assert "tests.serve._side_effect" not in sys.modules


def test_descriptions_in_an_artifact_must_be_strings():
    data = seat_flow().to_dict()
    data["nodes"][0]["inputs"]["available_seats"] = ["tests.serve._side_effect:fn", "a type?"]
    data["content_hash"] = content_hash(data)
    with pytest.raises(ArtifactError, match="description strings"):
        Flow.from_dict(data)


# --- a row's inputs ---------------------------------------------------------------------------------------------
def test_a_wrongly_typed_row_gets_problems_naming_each_field():
    flow = seat_flow(**TYPED)
    assert input_problems(flow, ROW) == []
    problems = input_problems(flow, {"preferences": 5, "available_seats": "nope"})
    assert len(problems) == 2
    assert problems[0].startswith("input 'preferences': Input should be a valid string")
    assert problems[1].startswith("input 'available_seats': Input should be a valid list")
    assert input_problems(flow.nodes["recommend"], {"preferences": 5}) == []  # type: ignore[arg-type]


def test_function_node_inputs_take_any_value():
    flow = Flow("f").then(FunctionNode("count", len, reads=["items"], writes=["n"]))
    assert input_problems(flow, {"items": [1, 2]}) == []


def test_running_the_flow_on_a_wrongly_typed_row_fails_naming_the_field():
    model = ScriptedChatModel(replies=['{"recommended_seats": ["economy_14A_window"]}'])
    graph = seat_flow(**TYPED).compile(model=model, caller=ModelCaller(cache=None, base_delay=0.0))
    with pytest.raises(NodeInputError, match="available_seats"):
        graph.invoke({"preferences": "window", "available_seats": "nope"})
    assert model.calls == []
    assert graph.invoke(ROW)["recommended_seats"] == ["economy_14A_window"]
