"""The `markers` reply format: inputs and reply as `[[ ## field ## ]]` blocks, what a call sends, and the parse."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel

from microprompts import Example, MicroPrompt, ModelCaller, OutputParseError
from microprompts.nodes import Runtime
from microprompts.nodes.parse import parse_markers
from microprompts.testing import SchemaRecordingCaller, ScriptedChatModel


class Label(BaseModel):
    label: Literal["yes", "no"]


class Summary(BaseModel):
    count: int
    summary: str


NODE = MicroPrompt(
    "cls",
    task="Does it mean yes?",
    inputs={"text": "The text.", "speaker": ""},
    output=Label,
    examples=[Example(inputs={"text": "sure", "speaker": "B"}, output={"label": "yes"})],
    reply_format="markers",
)


def runtime(model: ScriptedChatModel, caller: ModelCaller | None = None) -> Runtime:
    return Runtime(model=model, caller=caller or ModelCaller(cache=None, base_delay=0.0))


def test_the_system_prompt_lists_the_fields_then_shows_the_exchange_in_marked_blocks() -> None:
    system = NODE.render({"text": "ok", "speaker": "A"})[0].content
    fields = '## Output format\n- label (one of "yes", "no")\nEvery exchange is laid out in marked fields'
    shape = (
        "\n\n[[ ## text ## ]]\n{text}\n\n[[ ## speaker ## ]]\n{speaker}\n\n[[ ## label ## ]]\n{label}\n\n"
        "[[ ## completed ## ]]"
    )
    assert fields in system and shape in system
    assert "Example 1\nInput:\n[[ ## text ## ]]\nsure\n\n[[ ## speaker ## ]]\nB\n" in system
    assert "Output: \n[[ ## label ## ]]\nyes\n\n[[ ## completed ## ]]" in system
    assert "JSON" not in system


def test_the_user_turn_marks_each_input_then_asks_for_the_fields() -> None:
    user = NODE.render({"text": "ok", "speaker": "A", "unused": 1})[1].content
    assert user == (
        "[[ ## text ## ]]\nok\n\n[[ ## speaker ## ]]\nA\n\n"
        "Reply with the output fields, starting with `[[ ## label ## ]]` and ending with "
        "`[[ ## completed ## ]]`."
    )
    reasoning = NODE.with_params(reasoning=True).render({"text": "ok", "speaker": "A"})
    assert "starting with `[[ ## reasoning ## ]]`" in reasoning[1].content
    system = reasoning[0].content
    assert system.index("[[ ## reasoning ## ]]\n{reasoning}") < system.index("[[ ## label ## ]]\n{label}")
    assert "Write `reasoning` first" in system


@pytest.mark.parametrize(
    "text",
    [
        "[[ ## label ## ]]\nyes\n\n[[ ## completed ## ]]",
        "[[ ## label ## ]]\nYes.\n[[ ## completed ## ]]\n[[ ## label ## ]]\nno",
        "[[ ## label ## ]] yes",
        "label: yes",
        '{"label": "yes"}',
    ],
)
def test_a_marked_reply_is_read_up_to_the_completion_marker(text: str) -> None:
    assert parse_markers(text, Label).model_dump() == {"label": "yes"}


def test_several_fields_keep_multi_line_text_and_drop_the_completion_marker() -> None:
    text = (
        "[[ ## count ## ]]\n3 seats\n\n[[ ## summary ## ]]\nTwo by the window.\nOne aisle.\n\n"
        "[[ ## completed ## ]]\nbye"
    )
    assert parse_markers(text, Summary).model_dump() == {"count": 3, "summary": "Two by the window.\nOne aisle."}


def test_a_markers_call_sends_no_schema_and_repairs_in_its_own_format() -> None:
    caller = SchemaRecordingCaller()
    good = ScriptedChatModel(replies=["[[ ## label ## ]]\nno\n\n[[ ## completed ## ]]"])
    assert NODE.run({"text": "hardly", "speaker": "A"}, runtime(good, caller)) == {"label": "no"}
    assert caller.schemas == [None]
    bad = ScriptedChatModel(replies=["[[ ## label ## ]]\nperhaps", "[[ ## label ## ]]\nunsure"])
    with pytest.raises(OutputParseError) as info:
        NODE.run({"text": "hm", "speaker": "A"}, runtime(bad))
    assert "`[[ ## field ## ]]` blocks, ending with `[[ ## completed ## ]]`" in bad.calls[1].messages[-1].content
    assert info.value.raw == "[[ ## label ## ]]\nunsure"
