"""Request and response models of the served agent, built from the flow: its input keys typed as the flow types
them (`microprompts.flows.state_types`), and its output keys typed by the nodes' output models."""

from __future__ import annotations

import math
import typing
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from microprompts.flows import Flow
from microprompts.flows.state_types import input_types, usable, user_state_types
from microprompts.models import Usage
from microprompts.nodes import MicroPrompt
from microprompts.nodes.schema import json_schema


def state_types(flow: Flow) -> dict[str, Any]:
    """The annotation of each key of the flow's own state schema (TypedDict or pydantic); {} when none."""
    return user_state_types(flow.state)


def _class_name(flow: Flow, suffix: str) -> str:
    base = "".join(part.title() for part in "".join(c if c.isalnum() else " " for c in flow.name).split())
    return f"{base or 'Flow'}{suffix}"


def _fields(keys: typing.Sequence[str], types: dict[str, Any], required: bool) -> dict[str, Any]:
    """pydantic fields named f0, f1, ... aliased to the state keys (which may be any string)."""
    return {
        f"f{i}": (usable(types.get(key, Any)), Field(... if required else None, alias=key))
        for i, key in enumerate(keys)
    }


def input_model(flow: Flow) -> type[BaseModel]:
    """A pydantic model of the flow's inputs: every input key required and typed as the flow says (the state
    schema's type, else the type a micro-prompt declares, else `str` for a micro-prompt's untyped input), unknown
    keys refused."""
    return create_model(  # type: ignore[call-overload,no-any-return]
        _class_name(flow, "Input"),
        __config__=ConfigDict(extra="forbid", populate_by_name=False),
        **_fields(flow.input_keys, input_types(flow), required=True),
    )


def output_types(flow: Flow) -> dict[str, Any]:
    """The type of each output key: the state schema's, else the writing micro-prompt's field, else Any."""
    types = state_types(flow)
    result: dict[str, Any] = {}
    for key in flow.output_keys:
        if key in types:
            result[key] = types[key]
            continue
        for node in flow.nodes.values():
            if isinstance(node, MicroPrompt) and key in node.output.model_fields:
                result[key] = node.output.model_fields[key].annotation
                break
        else:
            result[key] = Any
    return result


def output_model(flow: Flow) -> type[BaseModel]:
    """A pydantic model of the flow's output: every key a node writes (optional: a branch may skip a node)."""
    return create_model(  # type: ignore[call-overload,no-any-return]
        _class_name(flow, "Output"), **_fields(flow.output_keys, output_types(flow), required=False)
    )


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """A model's JSON schema with `$ref`s inlined (falls back to a plain object for exotic types)."""
    try:
        return json_schema(model)
    except Exception:  # noqa: BLE001 - recursive or odd types: describe loosely rather than fail
        return {"type": "object", "title": model.__name__}


def _finite_score(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("score must be a finite number")
    return value


class FeedbackRequest(BaseModel):
    """`POST /feedback`: a score (higher is better) and an optional comment for a stored run (`feedback_model`
    adds the flow's `correction`)."""

    model_config = ConfigDict(extra="forbid")

    run_id: Annotated[str, Field(min_length=1, max_length=200, strict=True)]
    score: Annotated[float, Field(strict=True, allow_inf_nan=False)]
    comment: Annotated[str | None, Field(max_length=10_000, strict=True)] = None


class _Correction(BaseModel):
    """The base of a flow's correction model: unknown fields refused, at least one field given."""

    model_config = ConfigDict(extra="forbid", populate_by_name=False)

    @model_validator(mode="after")
    def _some_field(self) -> _Correction:
        if not self.model_fields_set:
            raise ValueError("a correction names at least one of the flow's output fields")
        return self


def correction_model(flow: Flow) -> type[BaseModel]:
    """The flow's output fields as a correction: every field optional (a correction may fix only some), each typed
    as the output says, unknown fields refused, at least one field given."""
    fields = _fields(flow.output_keys, output_types(flow), required=False)
    return create_model(_class_name(flow, "Correction"), __base__=_Correction, **fields)  # type: ignore[call-overload,no-any-return]


def feedback_model(flow: Flow) -> type[FeedbackRequest]:
    """`POST /feedback` for this flow: FeedbackRequest with an optional `correction`, the output the run should
    have given (an object of the flow's output fields, validated as the output is typed)."""
    field: Any = (typing.Optional[correction_model(flow)], None)  # noqa: UP045 - a class made at run time
    return create_model(_class_name(flow, "FeedbackRequest"), __base__=FeedbackRequest, correction=field)


def correction_data(body: FeedbackRequest) -> dict[str, Any] | None:
    """The validated correction of a feedback body as plain JSON keyed by the output keys; None without one."""
    given = getattr(body, "correction", None)
    if not isinstance(given, BaseModel):
        return None
    return given.model_dump(mode="json", by_alias=True, exclude_unset=True)


class RunResponse(BaseModel):
    """One run's answer: its id (for `/feedback` and `/runs/{id}`), the output state and the model usage."""

    run_id: str
    output: dict[str, Any]
    usage: Usage
    latency: float


class BatchItemError(BaseModel):
    """A batch item that failed: its index and the error."""

    index: int
    run_id: str | None = None
    error: dict[str, Any]


def request_models(flow: Flow, max_batch: int) -> tuple[type[BaseModel], type[BaseModel], type[BaseModel]]:
    """(input model, `{"input": ...}` request model, `{"inputs": [...]}` batch request model)."""
    inputs = input_model(flow)
    invoke = create_model(  # type: ignore[call-overload]
        _class_name(flow, "InvokeRequest"), __config__=ConfigDict(extra="forbid"), input=(inputs, ...)
    )
    batch = create_model(  # type: ignore[call-overload]
        _class_name(flow, "BatchRequest"),
        __config__=ConfigDict(extra="forbid"),
        inputs=(list[dict[str, Any]], Field(..., max_length=max_batch)),
    )
    return inputs, invoke, batch


def request_body(model: type[BaseModel], item: type[BaseModel] | None = None) -> dict[str, Any]:
    """`openapi_extra` documenting a JSON request body (we parse bodies ourselves, strictly)."""
    schema = schema_of(model)
    if item is not None and "inputs" in schema.get("properties", {}):
        schema["properties"]["inputs"]["items"] = schema_of(item)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
