"""The call cache's key does not move: a request made before the key was computed faster hits the entry written
then, and a schema shared by a node's rows (KeyedSchema) keys a request as the plain schema does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pytest
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from microprompts import MicroPrompt, ModelCaller
from microprompts.models import CallCache
from microprompts.models.cache import KeyedSchema, request_key
from microprompts.models.client import completion_key
from microprompts.nodes import Runtime
from microprompts.testing import ScriptedChatModel


class Pick(BaseModel):
    seat: Literal["1A", "2B"] = Field(description="The seat, é.")
    why: list[str] = Field(default_factory=list, max_length=3)


INPUTS: dict[str, Any] = {"seats": (list[str], "Seat ids."), "note": "A note."}
NODE = MicroPrompt("pick", task="Pick a seat.", inputs=INPUTS, output=Pick)
ROW = {"seats": ["1A", "2B"], "note": "window, ü"}
# The key this request had at 8a4bfb9, before the key was computed faster: a cache file written then must still hit.
KNOWN_KEY = "1a7806f6f1f2c5f331edc4d3eff918d03941768f19a07a2f6ad54467d07876d7"
REPLY = {"text": '{"seat": "2B"}', "prompt_tokens": 58, "completion_tokens": 4, "finish_reason": "stop"}


def test_a_cache_entry_written_under_the_old_key_is_hit(tmp_path: Path) -> None:
    cache = CallCache(tmp_path / "calls.sqlite")
    cache.put(KNOWN_KEY, REPLY)
    model = ScriptedChatModel(name="fake-1", replies=['{"seat": "1A"}'])
    caller = ModelCaller(cache=cache)
    assert NODE.run(ROW, Runtime(model=model, caller=caller)) == {"seat": "2B", "why": []}
    assert model.call_count == 0 and caller.meter.total.cached_calls == 1 and len(cache) == 1


def test_a_fresh_run_writes_the_old_key(tmp_path: Path) -> None:
    cache = CallCache(tmp_path / "calls.sqlite")
    model = ScriptedChatModel(name="fake-1", replies=['{"seat": "1A"}'])
    NODE.run(ROW, Runtime(model=model, caller=ModelCaller(cache=cache)))
    assert cache.get(KNOWN_KEY) is not None and len(cache) == 1


SCHEMAS = [
    NODE.output_schema(),
    {"type": "object", "properties": {"b": {"enum": [1, True, 1.0, None]}, "a": {"description": 'ü "q"\n'}}},
    {"z": [], "a": {}, "m": {"n": [{"y": 2, "x": 1}]}},
]


@pytest.mark.parametrize("schema", SCHEMAS)
@pytest.mark.parametrize("sample", [0, 3])
def test_a_keyed_schema_keys_a_request_as_the_plain_schema(schema: dict[str, Any], sample: int) -> None:
    keyed = KeyedSchema(json.dumps(schema))
    messages: list[BaseMessage] = [SystemMessage(content="sys é"), HumanMessage(content="row")]
    model = ScriptedChatModel(replies=["x"])
    plain_key = completion_key(model, messages, schema, 0.7, 128, sample)
    assert completion_key(model, messages, keyed, 0.7, 128, sample) == plain_key
    assert keyed == schema and list(keyed.fresh()) == list(schema) and keyed.fresh() is not keyed
    assert request_key({"schema": keyed}) == request_key({"schema": schema})
    assert request_key({"schema": keyed, "zz": 1}) == request_key({"schema": schema, "zz": 1})
