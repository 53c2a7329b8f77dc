"""The `lines` reply format: how it renders, what a call sends, and the lenient parse of `field: value` replies."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, Field

from microprompts import Example, MicroPrompt, ModelCaller, OutputParseError
from microprompts.nodes import Runtime
from microprompts.nodes.parse import parse_lines
from microprompts.testing import SchemaRecordingCaller, ScriptedChatModel


class Label(BaseModel):
    label: Literal["yes", "no"]


class Rich(BaseModel):
    reasoning: str
    count: int
    seats: list[str]
    note: str | None = None


def runtime(model: ScriptedChatModel) -> Runtime:
    return Runtime(model=model, caller=ModelCaller(cache=None, base_delay=0.0))


NODE = MicroPrompt(
    "cls",
    task="Does it mean yes?",
    inputs={"text": "The text."},
    output=Label,
    examples=[Example(inputs={"text": "sure"}, output={"label": "yes"})],
    reply_format="lines",
)


@pytest.mark.parametrize(
    "text",
    [
        "label: yes",
        "Label: Yes",
        "**label:** yes.",
        "label = yes",
        "[[ ## label ## ]]\nyes\n\n[[ ## completed ## ]]",
        "yes",
        "The answer is yes.",
        '{"label": "yes"}',
        "label: `yes` because she agrees",
        "I think so.\nlabel: yes\n\nExample 2\nInput:\ntext: nope\nOutput:\nlabel: no",
    ],
)
def test_a_one_field_reply_is_read_leniently(text: str) -> None:
    assert parse_lines(text, Label).model_dump() == {"label": "yes"}


def test_several_fields_multi_line_values_and_types() -> None:
    text = "reasoning: First I count.\nThen I add.\ncount: 12 objects\nseats: A1, B2,  C3\nnote: none"
    parsed = parse_lines(text, Rich)
    assert parsed.model_dump() == {
        "reasoning": "First I count.\nThen I add.",
        "count": 12,
        "seats": ["A1", "B2", "C3"],
        "note": None,
    }
    assert parse_lines('reasoning: r\ncount: 3\nseats: ["A1"]', Rich).seats == ["A1"]


class Top2(BaseModel):
    seats: list[str] = Field(max_length=2, description="Best first.")


@pytest.mark.parametrize("text", ["seats: A1, B2, C3, D4", 'seats: ["A1", "B2", "C3"]', "seats:\n- A1\n- B2\n- C3"])
def test_a_list_longer_than_its_max_items_is_cut_best_first(text: str) -> None:
    assert parse_lines(text, Top2).seats == ["A1", "B2"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("label: maybe", "label"),
        ("reasoning: r\nseats: A1", "count"),
        ("just words", "no `reasoning: value` line found"),
    ],
)
def test_a_reply_that_does_not_fit_names_the_problem(text: str, reason: str) -> None:
    model = Rich if "reasoning" in reason or "count" in reason else Label
    with pytest.raises(ValueError, match=reason):
        parse_lines(text, model)


def test_lines_render_in_the_output_format_and_the_examples() -> None:
    system = NODE.render({"text": "ok"})[0].content
    assert "Reply with one line per field, in this order, and nothing else:\nlabel: <your label>\n" in system
    assert "Output: \nlabel: yes" in system and "JSON" not in system
    reasoning = NODE.with_params(reasoning=True).render({"text": "ok"})[0].content
    assert reasoning.index("reasoning: <your reasoning>  (Brief") < reasoning.index("label: <your label>")
    assert "Write `reasoning` first" in reasoning


def test_a_lines_call_sends_no_schema_and_parses_the_text() -> None:
    caller = SchemaRecordingCaller()
    model = ScriptedChatModel(replies=["label: No.", '{"label": "no"}'])
    rt = Runtime(model=model, caller=caller)
    assert NODE.run({"text": "hardly"}, rt) == {"label": "no"}
    assert NODE.with_params(reply_format="json").run({"text": "hardly"}, rt) == {"label": "no"}
    schemas = caller.schemas
    assert schemas[0] is None and schemas[1] is not None and schemas[1]["properties"]["label"]["enum"] == ["yes", "no"]


def test_a_bad_lines_reply_is_repaired_in_its_own_format_then_raises() -> None:
    model = ScriptedChatModel(replies=["label: perhaps", "label: unsure"])
    with pytest.raises(OutputParseError) as info:
        NODE.run({"text": "hm"}, runtime(model))
    assert "`field: value` lines" in model.calls[1].messages[-1].content
    assert info.value.raw == "label: unsure"


def test_a_run_on_into_another_example_is_cut_off() -> None:
    class Note(BaseModel):
        summary: str

    text = "summary: The seats are fine.\n\nExample 3\nInput:\ntext: more\nOutput:\nsummary: invented"
    assert parse_lines(text, Note).summary == "The seats are fine."
