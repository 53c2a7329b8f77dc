"""Deterministic rendering of a micro-prompt and one row's inputs into chat messages."""

from __future__ import annotations

import html
import json
import re
from typing import Any, Protocol

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.messages.utils import count_tokens_approximately

from microprompts.models.phases import phase
from microprompts.nodes.memo import per_object
from microprompts.nodes.schema import COMPLETED, REASONING, describe_fields, describe_lines, marker
from microprompts.nodes.sections import DataFormat, Example, Params, ReplyFormat, Section


class Prompt(Protocol):
    """What rendering reads of a micro-prompt (a `MicroPrompt` is one)."""

    @property
    def sections(self) -> tuple[Section, ...]:
        """Its sections, in order."""
        ...

    @property
    def inputs(self) -> dict[str, str]:
        """Its input keys and their descriptions."""
        ...

    @property
    def params(self) -> Params:
        """Its parameters."""
        ...

    def output_schema(self, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
        """The JSON schema of its reply."""
        ...

    def shown_examples(self, inputs: dict[str, Any] | None = None) -> tuple[Example, ...]:
        """The examples the prompt shows (to the row with `inputs`, when they are chosen per row)."""
        ...


def render_value(value: Any) -> str:
    """Strings as they are, anything else as compact JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


_LABEL = re.compile(r"^[ \t]*([^\s:]+)[ \t]*:")
_MARKER = re.compile(r"\[\[\s*##")


def _markdown_value(value: Any, keys: set[str]) -> str:
    """A value as a `key: value` line shows it; one whose later lines would read as another field's `key:` line is
    shown as a JSON string instead, so no input can forge a field (ordinary values are shown as they are)."""
    text = render_value(value)
    if "\n" not in text:
        return text  # one line: only a later line could forge a field
    lines = text.split("\n")[1:]
    if any((m := _LABEL.match(line)) is not None and m.group(1) in keys for line in lines):
        return json.dumps(text, ensure_ascii=False)
    return text


def _xml_value(value: Any, keys: set[str]) -> str:
    """A value inside its tag; one holding a tag of a field (opening or closing) is escaped, so it cannot close its
    own field and open another (ordinary values are shown as they are)."""
    text = render_value(value)
    if any(re.search(rf"</?\s*{re.escape(k)}\s*>", text) for k in keys):
        return html.escape(text, quote=False)
    return text


def _marked_value(value: Any) -> str:
    """A value under its marker; `[[ ##` inside it is broken up, so it cannot open another field's block."""
    return _MARKER.sub("[ [ ##", render_value(value))


def render_data(data: dict[str, Any], fmt: DataFormat) -> str:
    """A row's fields in the chosen data format; values that would forge another field are escaped."""
    if fmt == "json":
        return json.dumps(data, ensure_ascii=False)
    keys = set(data)
    if fmt == "xml":
        return "\n".join(f"<{k}>{_xml_value(v, keys)}</{k}>" for k, v in data.items())
    return "\n".join(f"{k}: {_markdown_value(v, keys)}" for k, v in data.items())


def render_marked(data: dict[str, Any]) -> str:
    """Fields as `[[ ## name ## ]]` blocks, each value on the lines after its marker (escaped as above)."""
    return "\n\n".join(f"{marker(k)}\n{_marked_value(v)}" for k, v in data.items())


def render_closed(data: dict[str, Any]) -> str:
    """Marked blocks closed by the completion marker: a `markers` reply, or the shape of one exchange."""
    return f"{render_marked(data)}\n\n{marker(COMPLETED)}"


def reply_instruction(names: list[str]) -> str:
    """The request closing a `markers` user turn: which marker to start with and which to end with."""
    first = marker(names[0]) if names else marker(COMPLETED)
    return f"Reply with the output fields, starting with `{first}` and ending with `{marker(COMPLETED)}`."


def render_reply(output: dict[str, Any], fmt: ReplyFormat) -> str:
    """An output as the model should write it: a JSON object, `field: value` lines (on a new line), which are
    the markdown data format's lines, or marked blocks closed by the completion marker. The lines keep the space
    after `Output:`: without it SmolLM2 answered neither row of the lines integration test, with it one; every
    lines result in benchmarks/ was measured with it."""
    if fmt == "markers":
        return "\n" + render_closed(output)
    return "\n" + render_data(output, "markdown") if fmt == "lines" else render_data(output, "json")


def _section_body(mp: Prompt, section: Section, inputs: dict[str, Any] | None) -> str:
    parts = [section.text] if section.text else []
    if section.kind == "inputs":
        parts += [f"- {k}: {d}" if d else f"- {k}" for k, d in mp.inputs.items()]
    elif section.kind == "output_format":
        schema = mp.output_schema()
        if mp.params.reply_format == "lines":
            parts.append("Reply with one line per field, in this order, and nothing else:")
            parts += describe_lines(schema)
        elif mp.params.reply_format == "markers":
            parts += describe_fields(schema, free_text=True)
            parts.append(
                "Every exchange is laid out in marked fields, each value on the lines under its marker: the "
                "message holds the inputs, your reply the outputs, then the completion marker."
            )
            fields = [*mp.inputs, *schema.get("properties", {})]
            parts.append("\n" + render_closed({k: f"{{{k}}}" for k in fields}))
        else:
            parts.append("Reply with one JSON object with these fields:")
            parts += describe_fields(schema)
        for field, key in mp.params.choices.items():
            parts.append(f"Each value of {field} must be copied exactly from {key}.")
        if mp.params.reasoning:
            parts.append(f"Write `{REASONING}` first, then the answer fields.")
    elif section.kind == "examples":
        for i, example in enumerate(mp.shown_examples(inputs), 1):
            output = render_reply(example.output, mp.params.reply_format)
            parts.append(f"Example {i}\nInput:\n{render_inputs(mp, example.inputs)}\nOutput: {output}")
    return "\n".join(parts)


def render_section(mp: Prompt, section: Section, inputs: dict[str, Any] | None = None) -> str:
    """One section in the prompt's data format (its examples the ones shown to the row with `inputs`, when they are
    chosen per row); empty when it has nothing to say."""
    body = _section_body(mp, section, inputs)
    if not body:
        return ""
    fmt = mp.params.data_format
    if fmt == "xml":
        tag = section.title.lower().replace(" ", "_")
        return f"<{tag}>\n{body}\n</{tag}>"
    if fmt == "json":
        return json.dumps({section.title: body}, ensure_ascii=False)
    return f"## {section.title}\n{body}"


def system_prompt(mp: Prompt, inputs: dict[str, Any] | None = None) -> str:
    """The system prompt: the sections in order. It is the same for every row, so it is rendered once per prompt
    object and kept while that object lives (a prompt is immutable: a change makes a new one), unless its examples
    are chosen per row (`nearest_examples`): then it is rendered for the row with `inputs`."""

    def joined(row: dict[str, Any] | None) -> str:
        return "\n\n".join(p for s in mp.sections if (p := render_section(mp, s, row)))

    if mp.params.nearest_examples and inputs is not None:
        return joined(inputs)
    return per_object(mp, "system_prompt", lambda: joined(None))


def render_inputs(mp: Prompt, inputs: dict[str, Any]) -> str:
    """A row's inputs as the node shows them: marked blocks for `markers` replies, else its data format."""
    data = {k: inputs[k] for k in mp.inputs if k in inputs}
    return render_marked(data) if mp.params.reply_format == "markers" else render_data(data, mp.params.data_format)


def render_messages(mp: Prompt, inputs: dict[str, Any]) -> list[BaseMessage]:
    """The system prompt (sections in order) and the user turn (this row's inputs; for `markers` replies, with
    the request to answer in marked fields after them)."""
    with phase("rendering"):
        system = system_prompt(mp, inputs)
        user = render_inputs(mp, inputs)
        if mp.params.reply_format == "markers":
            user += "\n\n" + reply_instruction(list(mp.output_schema().get("properties", {})))
        return [SystemMessage(content=system), HumanMessage(content=user)]


def count_tokens(messages: list[BaseMessage]) -> int:
    """An approximate token count (LangChain's estimator), the same for every backend."""
    with phase("rendering"):
        return int(count_tokens_approximately(messages))
