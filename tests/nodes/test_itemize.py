"""Itemized totals: a whole-number output answered as a list of counted things that the node adds up."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from microprompts import Flow, MicroPrompt, ModelCaller
from microprompts.flows import FlowValidationError
from microprompts.nodes import Example, OutputParseError
from microprompts.nodes.itemize import itemizable, itemized, items_key
from microprompts.testing import ScriptedChatModel


class Count(BaseModel):
    note: str = ""
    answer: int = Field(ge=0, description="The total, as a whole number.")


class Crowded(BaseModel):
    items: list[str]
    total: int
    flag: bool


def node(**params: object) -> MicroPrompt:
    return MicroPrompt("count", task="Count the fruit.", inputs={"question": "The list."}, output=Count, **params)


def run(mp: MicroPrompt, replies: list[str]) -> tuple[dict[str, object], ScriptedChatModel]:
    model = ScriptedChatModel(replies=replies)
    out = Flow("f").then(mp).compile(model=model, caller=ModelCaller()).invoke({"question": "2 apples, a pear, a car"})
    return out, model


def test_only_whole_number_fields_are_itemizable_and_the_list_key_avoids_a_clash() -> None:
    assert itemizable(Count) == ["answer"]
    assert itemizable(Crowded) == ["total"]  # a bool is not a count
    assert items_key(Count, "answer") == "items"
    assert items_key(Crowded, "total") == "total_items"
    fields = list(itemized(Crowded, "total").model_fields)
    assert fields == ["items", "total_items", "flag"]  # in place of the field, the others kept in order


def test_the_model_lists_and_the_node_adds_up() -> None:
    reply = (
        '{"note": "", "items": [{"name": "apple", "quantity": 2, "counted": true}, '
        '{"name": "pear", "quantity": 1, "counted": true}, {"name": "car", "quantity": 4, "counted": false}]}'
    )
    out, model = run(node(itemize="answer"), [reply])
    assert out["answer"] == 3  # the car is listed, not counted
    assert "items" not in out  # the state gets the output's own fields only
    properties = node(itemize="answer").output_schema()["properties"]
    item = properties["items"]["items"]
    assert list(properties) == ["note", "items"] and item["properties"]["quantity"]["minimum"] == 0
    assert item["required"] == ["name", "quantity", "counted"]
    system = model.calls[0].system
    assert "- items (list of object)" in system and "whether it is of the kind asked about" in system


def test_an_empty_list_is_zero_and_a_negative_quantity_is_repaired() -> None:
    out, _ = run(node(itemize="answer"), ['{"note": "", "items": []}'])
    assert out["answer"] == 0
    bad = '{"note": "", "items": [{"name": "apple", "quantity": -2, "counted": true}]}'
    good = '{"note": "", "items": [{"name": "apple", "quantity": 2, "counted": true}]}'
    out, model = run(node(itemize="answer"), [bad, good])
    assert out["answer"] == 2 and len(model.calls) == 2
    with pytest.raises(OutputParseError):
        run(node(itemize="answer"), [bad, bad])


def test_a_list_cut_at_the_token_limit_is_not_added_up_short() -> None:
    cut = '{"note": "", "items": [{"name": "apple", "quantity": 2, "counted": true}, '
    model = ScriptedChatModel(replies=[cut], repeat_last=True, finish_reason="length")
    flow = Flow("f").then(node(itemize="answer"))
    with pytest.raises(OutputParseError):
        flow.compile(model=model, caller=ModelCaller()).invoke({"question": "2 apples, a pear"})
    assert len(model.calls) == 2  # the repair turn was asked for, not the first item's total kept


def test_a_direct_total_is_not_accepted_when_itemized() -> None:
    with pytest.raises(OutputParseError):
        run(node(itemize="answer"), ['{"note": "", "answer": 7}', '{"note": "", "answer": 7}'])


def test_free_text_replies_are_told_the_keys_of_each_item() -> None:
    keys = "Each is a JSON object with the keys name, quantity, counted."
    for fmt in ("lines", "markers"):
        assert keys in node(itemize="answer", reply_format=fmt).render({"question": "x"})[0].content
    assert keys not in node(itemize="answer").render({"question": "x"})[0].content  # JSON: the grammar holds the keys


def test_itemized_lines_replies_and_votes_add_up_too() -> None:
    listed = '[{"name": "apple", "quantity": 2, "counted": true}, {"name": "pear", "quantity": 2, "counted": true}]'
    reply = f"note: x\nitems: {listed}"
    out, _ = run(node(itemize="answer", reply_format="lines"), [reply])
    assert out["answer"] == 4
    one = '{"note": "", "items": [{"name": "apple", "quantity": 1, "counted": true}]}'
    two = '{"note": "", "items": [{"name": "apple", "quantity": 2, "counted": true}]}'
    out, _ = run(node(itemize="answer", samples=3, temperature=0.7), [two, one, two])
    assert out["answer"] == 2


@pytest.mark.parametrize(
    ("mp", "message"),
    [
        (node(itemize="note"), "not a whole-number"),
        (node(itemize="missing"), "not a whole-number"),
        (
            node(itemize="answer", examples=[Example(inputs={"question": "an apple"}, output={"answer": 1})]),
            "examples do not show",
        ),
        (
            node(itemize="answer", calibration={"field": "answer", "labels": ["1", "2"], "bias": [0.0, 0.0]}),
            "cannot both be set",
        ),
    ],
)
def test_a_node_that_cannot_itemize_is_an_invalid_flow(mp: MicroPrompt, message: str) -> None:
    with pytest.raises(FlowValidationError, match=message):
        Flow("f").then(mp).validate()


def test_the_artifact_keeps_itemize_and_leaves_the_key_out_when_unset() -> None:
    plain = Flow("f").then(node())
    assert "itemize" not in plain.to_dict()["nodes"][0]["params"]
    flow = Flow("f").then(node(itemize="answer"))
    back = Flow.from_dict(flow.to_dict())
    assert back.micro_prompts()[0].params.itemize == "answer"
    assert back.to_dict()["content_hash"] == flow.to_dict()["content_hash"]
