"""The type of each state key of a flow: the user's state type where it has one, else what the nodes declare
(a micro-prompt's typed inputs, a plain string for its untyped ones, its output fields), else Any.

The generated state schema, the served request models and the check of a row's inputs all read these types, so a
flow input is one type everywhere: in `compiled.get_input_jsonschema()`, in `/schema` and in a row's check.
"""

from __future__ import annotations

import json
import typing
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, TypeAdapter

from microprompts.flows.structure import FlowShape
from microprompts.nodes import MicroPrompt
from microprompts.nodes.input_types import python_type, type_problems

__all__ = ["input_problems", "input_type_conflicts", "input_types", "key_types", "usable", "user_state_types"]


def user_state_types(state: type | None) -> dict[str, Any]:
    """The annotation of each key of a user's state type (TypedDict, pydantic model, dataclass); {} when none."""
    if state is None:
        return {}
    try:
        if isinstance(state, type) and issubclass(state, BaseModel):
            return {k: f.annotation for k, f in state.model_fields.items()}
        return dict(typing.get_type_hints(state, include_extras=True))
    except Exception:  # noqa: BLE001 - an odd state type only costs us its types
        return {}


def declared_schemas(flow: FlowShape) -> dict[str, dict[str, Any]]:
    """The JSON Schema the first micro-prompt that types an input gives it (conflicts: `input_type_conflicts`)."""
    schemas: dict[str, dict[str, Any]] = {}
    for mp in flow.micro_prompts():
        for key, schema in mp.input_schemas.items():
            schemas.setdefault(key, schema)
    return schemas


def input_type_conflicts(flow: FlowShape) -> list[str]:
    """One line per input two micro-prompts declare with different types (a state key has one type)."""
    first: dict[str, tuple[str, str]] = {}
    problems = []
    for mp in flow.micro_prompts():
        for key, schema in mp.input_schemas.items():
            text = json.dumps(schema, sort_keys=True)
            if key not in first:
                first[key] = (mp.name, text)
            elif first[key][1] != text:
                problems.append(f"nodes {first[key][0]!r} and {mp.name!r} declare input {key!r} with different types")
    return problems


def input_types(flow: FlowShape) -> dict[str, Any]:
    """The type of each flow input: the user's state type's; else the type a micro-prompt declares; else `str`
    when a micro-prompt reads it untyped; else (read only by function nodes) Any."""
    state = user_state_types(flow.state)
    declared = declared_schemas(flow)
    untyped = {k for mp in flow.micro_prompts() for k in mp.inputs}
    types: dict[str, Any] = {}
    for key in flow.input_keys:
        if key in state:
            types[key] = state[key]
        elif key in declared:
            types[key] = python_type(declared[key], key)
        else:
            types[key] = str if key in untyped else Any
    return types


def key_types(flow: FlowShape) -> dict[str, Any]:
    """The type of every key the flow reads or writes: inputs as `input_types`, outputs as the writing
    micro-prompt's output field, keys a micro-prompt reads typed as declared; Any for the rest."""
    state = user_state_types(flow.state)
    types = input_types(flow)
    declared = declared_schemas(flow)
    for node in flow.nodes.values():
        for key in node.writes:
            if key in types:
                continue
            if key in state:
                types[key] = state[key]
            elif isinstance(node, MicroPrompt):
                types[key] = node.output.model_fields[key].annotation
        for key in node.reads:
            if key not in types:
                types[key] = state.get(key, python_type(declared[key], key) if key in declared else Any)
    return {k: usable(v) for k, v in types.items()}


def usable(annotation: Any) -> Any:
    """`annotation` if pydantic can validate and describe it as JSON, else Any."""
    try:
        return annotation if _describable(annotation) else Any
    except TypeError:  # unhashable: try without the memo
        return annotation if _json_schema_ok(annotation) else Any


@lru_cache(maxsize=1024)
def _describable(annotation: Any) -> bool:
    return _json_schema_ok(annotation)


def _json_schema_ok(annotation: Any) -> bool:
    try:
        TypeAdapter(annotation).json_schema()
        return True
    except Exception:  # noqa: BLE001 - arbitrary user types: accept any JSON value instead
        return False


def input_problems(target: FlowShape | MicroPrompt, inputs: dict[str, Any]) -> list[str]:
    """One line per given input whose value does not match its type, naming the input: for a flow, the types of
    `input_types` (untyped micro-prompt inputs are strings); for a micro-prompt, its typed inputs. Missing inputs
    are not reported here."""
    if isinstance(target, MicroPrompt):
        return target.input_problems(inputs)
    return type_problems(input_types(target), inputs)
