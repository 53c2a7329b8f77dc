"""Sections and rendering: default order, determinism in every data format, examples, reasoning field."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, ValidationError

from microprompts import Example, MicroPrompt, Section
from microprompts.nodes.render import count_tokens


class Label(BaseModel):
    label: Literal["a", "b"]


def make(**params: object) -> MicroPrompt:
    return MicroPrompt(
        "cls",
        task="Classify the text.",
        inputs={"text": "The text.", "tags": "Tags."},
        output=Label,
        examples=[
            Example(inputs={"text": "hi", "tags": ["x"]}, output={"label": "a"}),
            Example(inputs={"text": "yo", "tags": []}, output={"label": "b"}),
        ],
        guidelines=["Be brief."],
        **params,
    )


ROW = {"text": "hello", "tags": ["p", "q"]}


def test_default_sections_are_task_inputs_output_examples_guidelines_in_order():
    assert [s.kind for s in make().sections] == ["task", "inputs", "output_format", "examples", "guidelines"]


def test_default_sections_leave_out_examples_and_guidelines_when_not_given():
    mp = MicroPrompt("x", task="Do it.", inputs=["q"])
    assert [s.kind for s in mp.sections] == ["task", "inputs", "output_format"]
    assert mp.inputs == {"q": ""}
    assert mp.writes == ("output",)


def test_sections_and_task_together_are_refused():
    with pytest.raises(ValueError, match="either `sections` or `task`"):
        MicroPrompt("x", task="Do it.", sections=[Section(kind="task", title="Task", text="t")])


def test_a_micro_prompt_needs_a_name():
    with pytest.raises(ValueError, match="needs a name"):
        MicroPrompt(task="Do it.")


def test_explicit_sections_render_in_the_given_order():
    mp = MicroPrompt(
        "x",
        sections=[
            Section(kind="text", title="Notes", text="Be kind."),
            Section(kind="task", title="Job", text="Do it."),
        ],
        inputs=["q"],
    )
    system = mp.render({"q": "1"})[0].content
    assert system == "## Notes\nBe kind.\n\n## Job\nDo it."


@pytest.mark.parametrize("fmt", ["markdown", "xml", "json"])
def test_rendering_is_deterministic_in_every_data_format(fmt):
    first = [(m.type, m.content) for m in make(data_format=fmt).render(ROW)]
    second = [(m.type, m.content) for m in make(data_format=fmt).render(dict(reversed(list(ROW.items()))))]
    assert first == second
    assert [t for t, _ in first] == ["system", "human"]


def test_markdown_rendering():
    system, user = (m.content for m in make().render(ROW))
    assert user == 'text: hello\ntags: ["p", "q"]'
    assert system.startswith("## Task\nClassify the text.\n\n## Inputs\n- text: The text.\n- tags: Tags.")
    assert '- label (one of "a", "b")' in system
    assert 'Example 1\nInput:\ntext: hi\ntags: ["x"]\nOutput: {"label": "a"}' in system
    assert system.endswith("## Guidelines\n- Be brief.")


def test_xml_rendering():
    system, user = (m.content for m in make(data_format="xml").render(ROW))
    assert user == '<text>hello</text>\n<tags>["p", "q"]</tags>'
    assert system.startswith("<task>\nClassify the text.\n</task>")
    assert "<output_format>\n" in system and "<examples>\nExample 1\nInput:\n<text>hi</text>" in system


def test_json_rendering():
    import json

    system, user = (m.content for m in make(data_format="json").render(ROW))
    assert json.loads(user) == ROW
    blocks = [json.loads(b) for b in system.split("\n\n")]
    assert [next(iter(b)) for b in blocks] == ["Task", "Inputs", "Output format", "Examples", "Guidelines"]


def test_extra_state_keys_are_not_rendered():
    user = make().render({**ROW, "secret_note": "zzz"})[1].content
    assert "zzz" not in user


def test_n_examples_limits_the_examples_shown_and_zero_drops_the_section():
    assert "Example 2" in make().render(ROW)[0].content
    one = make(n_examples=1).render(ROW)[0].content
    assert "Example 1" in one and "Example 2" not in one
    none = make(n_examples=0).render(ROW)[0].content
    assert "## Examples" not in none and "Example 1" not in none


def test_reasoning_field_comes_first_in_schema_and_prompt():
    mp = make(reasoning=True)
    assert list(mp.output_schema()["properties"]) == ["reasoning", "label"]
    assert mp.output_schema()["required"] == ["reasoning", "label"]
    system = mp.render(ROW)[0].content
    assert system.index("- reasoning (string)") < system.index("- label (")
    assert "Write `reasoning` first" in system
    assert "reasoning" not in make().render(ROW)[0].content
    assert mp.writes == ("label",)  # reasoning is never written to state


def test_token_count_is_positive_and_grows_with_the_prompt():
    short = count_tokens(make(n_examples=0).render(ROW))
    long = count_tokens(make().render(ROW))
    assert 0 < short < long


def test_params_are_validated():
    with pytest.raises(ValidationError):
        make(temperature=3.0)
    with pytest.raises(ValidationError):
        make(data_format="yaml")
    with pytest.raises(ValidationError):
        make(samples=0)


def test_examples_given_to_a_node_without_any_are_shown() -> None:
    bare = MicroPrompt("greet", task="Greet the user.", inputs={"text": "A name."})
    given = bare.replace(examples=[{"inputs": {"text": "Ann"}, "output": {"answer": "Hi Ann"}}])
    assert [s.kind for s in given.sections] == ["task", "inputs", "output_format", "examples"]
    assert "Hi Ann" in str(given.render({"text": "Bob"})[0].content)
    hidden = make().replace(sections=[s for s in make().sections if s.kind != "examples"])
    assert hidden.replace(examples=list(hidden.examples)[:1]).section("examples") is None  # hidden on purpose stays so
