"""Output schemas: inlined refs, the reasoning field, and rebuilding a model from its schema exactly."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from microprompts.nodes.schema import describe_fields, json_schema, model_from_schema, with_reasoning


class Leaf(BaseModel):
    """A nested thing."""

    name: str = Field(description="Its name.")
    weight: float | None = None


class Tree(BaseModel):
    """The whole tree."""

    leaves: list[Leaf]
    root: Leaf
    color: Literal["red", "green"] = "red"
    tags: list[Literal["a", "b"]] = []
    count: int = 0
    ok: bool = True
    meta: dict[str, str] = {}


class Spaced(BaseModel):
    model_config = ConfigDict(title="Spaced Title")

    x: int = Field(title="The X")


def test_json_schema_inlines_refs():
    schema = json_schema(Tree)
    assert "$defs" not in schema and "$ref" not in str(schema)
    assert schema["properties"]["root"]["properties"]["name"]["description"] == "Its name."


@pytest.mark.parametrize("model", [Tree, Leaf, Spaced, with_reasoning(Leaf)])
def test_model_from_schema_reproduces_the_schema_exactly(model):
    schema = json_schema(model)
    rebuilt = model_from_schema(schema)
    assert json_schema(rebuilt) == schema


def test_rebuilt_model_validates_like_the_original():
    rebuilt = model_from_schema(json_schema(Tree))
    good = {"leaves": [{"name": "l"}], "root": {"name": "r", "weight": 1.5}, "tags": ["a"]}
    assert rebuilt.model_validate(good).model_dump(mode="json") == Tree.model_validate(good).model_dump(mode="json")
    for bad in (
        {"leaves": [], "root": {"name": "r"}, "color": "blue"},
        {"root": {"name": "r"}},
        {"leaves": [], "root": {"name": "r"}, "tags": ["c"]},
    ):
        with pytest.raises(ValueError):
            rebuilt.model_validate(bad)


def test_with_reasoning_puts_reasoning_first_and_keeps_the_rest():
    schema = json_schema(with_reasoning(Leaf))
    assert list(schema["properties"]) == ["reasoning", "name", "weight"]
    assert schema["required"] == ["reasoning", "name"]


def test_describe_fields_lists_types_enums_and_descriptions():
    lines = describe_fields(json_schema(Tree))
    assert '- color (one of "red", "green")' in lines
    assert '- tags (list of one of "a", "b")' in lines
    assert "- leaves (list of object)" in lines
    free = describe_fields(json_schema(Tree), free_text=True)
    assert any(
        line.startswith("- leaves (list of object)") and "Each is a JSON object with the keys name, weight." in line
        for line in free
    )
    assert any(
        line.startswith("- root (object)") and line.endswith(" A JSON object with the keys name, weight.")
        for line in free
    )
    assert describe_fields(json_schema(Leaf))[0] == "- name (string): Its name."
    assert describe_fields(json_schema(Leaf))[1] == "- weight (number or null)"
