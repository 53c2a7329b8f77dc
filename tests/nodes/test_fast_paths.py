"""The shortcuts a node run takes (one output copied rather than voted, input types built once per prompt, no trace
built without a recorder) give what the long way gives."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from pydantic import BaseModel

from microprompts import MicroPrompt, ModelCaller
from microprompts.nodes import NodeInputError, Recorder, Runtime
from microprompts.nodes.micro_prompt import voted
from microprompts.testing import ScriptedChatModel


class Pick(BaseModel):
    seat: str
    why: dict[str, Any] = {}


NODE = MicroPrompt("pick", task="Pick.", inputs={"seats": (list[str], "Seat ids."), "note": "A note."}, output=Pick)


def _round_trip(outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """The vote as it was written first: the most common sorted JSON, read back."""
    return json.loads(Counter(json.dumps(o, sort_keys=True) for o in outputs).most_common(1)[0][0])


@pytest.mark.parametrize(
    "output",
    [
        {"seat": "1A"},
        {"z": [1, 2.5, None, True], "a": {"y": "x", "b": [{"d": 1, "c": 0}]}, "m": -0.0},
        {"n": float("inf"), "s": 'é\n"q"'},
        {"t": (1, 2)},  # not plain JSON: the round trip says what it becomes
        {"k": {1: "a"}},  # a key that is not a string: likewise
    ],
)
def test_one_output_is_what_the_json_round_trip_gives_keys_order_included(output: dict[str, Any]) -> None:
    got, want = voted([output]), _round_trip([output])
    assert got == want and json.dumps(got) == json.dumps(want)
    assert got is not output


def test_several_outputs_are_still_voted() -> None:
    outputs = [{"seat": "1A"}, {"seat": "2B"}, {"seat": "2B"}]
    assert voted(outputs) == _round_trip(outputs) == {"seat": "2B"}


def test_input_types_are_built_once_per_prompt_and_follow_a_replaced_schema() -> None:
    assert NODE.input_types() is not NODE.input_types()  # a copy each time: changing it changes nothing
    assert NODE.input_problems({"seats": ["1A"], "note": "x"}) == []
    assert NODE.input_problems({"seats": "1A"})  # still checked on every row
    loose = NODE.replace(input_schemas={"seats": {"type": "array", "items": {"type": "integer"}}})
    assert loose.input_problems({"seats": [1]}) == [] and NODE.input_problems({"seats": [1]})
    model = ScriptedChatModel(replies=['{"seat": "1A"}'])
    with pytest.raises(NodeInputError, match="badly typed"):
        NODE.run({"seats": [1], "note": "x"}, Runtime(model=model, caller=ModelCaller(cache=None)))


def test_a_run_without_a_recorder_gives_the_same_output_and_usage_as_one_with() -> None:
    replies = ["not json", '{"why": {"b": 1, "a": 2}, "seat": "1A"}']
    state = {"seats": ["1A"], "note": "x"}
    bare, traced = ModelCaller(cache=None), ModelCaller(cache=None)
    out = NODE.run(state, Runtime(model=ScriptedChatModel(replies=list(replies)), caller=bare))
    recorder = Recorder()
    again = NODE.run(state, Runtime(model=ScriptedChatModel(replies=list(replies)), caller=traced), recorder)
    assert out == again == {"seat": "1A", "why": {"a": 2, "b": 1}} and list(out) == list(again)
    (trace,) = recorder.traces
    assert trace.replies == replies and trace.output == out and trace.rendered_tokens > 0
    assert trace.usage.calls == 2 == bare.meter.total.calls == traced.meter.total.calls
    assert recorder.meter.by_node["pick"].calls == 2 and trace.error is None
