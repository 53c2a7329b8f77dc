"""Typed inputs as served: `/schema` shows each input's type, and a request whose inputs do not match the types
is a 422 naming the field, before any model call; a flow loaded from its artifact serves the same types."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from microprompts import Flow, MicroPrompt
from microprompts.serve.app import create_app
from tests.serve.helpers import SEAT_INPUT, InstantChatModel, seat_flow


class Count(BaseModel):
    total: int


class CountInputs(BaseModel):
    """Every input of the counting node, typed and described."""

    items: list[str] = Field(description="The things to count.")
    limit: int = Field(description="Stop counting here.")
    exact: bool = Field(description="Count exactly or roughly.")


def test_schema_shows_the_input_types(make_client):
    client = make_client()
    schema = client.get("/schema").json()["input"]
    props = schema["properties"]
    assert props["preferences"]["type"] == "string"  # untyped: a string
    assert props["available_seats"]["type"] == "array"
    assert props["available_seats"]["items"] == {"type": "string"}


def test_schema_of_a_model_of_inputs(make_client):
    node = MicroPrompt("count", task="Count the items.", inputs=CountInputs, output=Count)
    client = make_client(flow=Flow("count").then(node), model=InstantChatModel(reply='{"total": 2}'))
    props = client.get("/schema").json()["input"]["properties"]
    assert [props[k]["type"] for k in ("items", "limit", "exact")] == ["array", "integer", "boolean"]
    ok = client.post("/invoke", json={"input": {"items": ["a", "b"], "limit": 5, "exact": True}})
    assert ok.status_code == 200, ok.text
    bad = client.post("/invoke", json={"input": {"items": ["a"], "limit": "lots", "exact": True}})
    assert bad.status_code == 422


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"preferences": 5}, "preferences"), ({"available_seats": "nope"}, "available_seats")],
)
def test_wrongly_typed_inputs_are_422_naming_the_field(make_client, changes: dict[str, Any], field: str):
    client = make_client()
    for route in ("/invoke", "/stream"):
        response = client.post(route, json={"input": {**SEAT_INPUT, **changes}})
        assert response.status_code == 422, response.text
        assert field in response.text
    assert client.post("/invoke", json={"input": SEAT_INPUT}).status_code == 200


def test_a_batch_item_of_the_wrong_type_fails_alone(make_client):
    client = make_client()
    response = client.post("/batch", json={"inputs": [SEAT_INPUT, {**SEAT_INPUT, "available_seats": "nope"}]})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert "error" not in results[0] and "available_seats" in str(results[1]["error"])


def test_a_flow_served_from_its_artifact_keeps_the_types(tmp_path: Path):
    path = tmp_path / "seats.json"
    flow = seat_flow()
    flow.save(str(path))
    app = create_app(path, model=InstantChatModel.for_flow(flow), allow_modules=["tests.serve.helpers"])
    with TestClient(app, base_url="http://127.0.0.1") as client:
        props = client.get("/schema").json()["input"]["properties"]
        assert props["available_seats"]["type"] == "array"
        assert client.post("/invoke", json={"input": {**SEAT_INPUT, "available_seats": "nope"}}).status_code == 422
