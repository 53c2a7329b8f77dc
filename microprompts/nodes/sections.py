"""Sections and examples: the ordered, typed parts a micro-prompt is made of."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict

SectionKind = Literal["task", "inputs", "output_format", "examples", "guidelines", "text"]
DataFormat = Literal["markdown", "xml", "json"]
# How the model answers: one JSON object (grammar-constrained where the backend can); one `field: value` line per
# field in free text, parsed leniently (small models often answer better in plain text than inside JSON); or
# `markers`: the inputs and the reply as `[[ ## field ## ]]` blocks ending in a completion marker, free text too.
ReplyFormat = Literal["json", "lines", "markers"]
REPLY_FORMATS: tuple[str, ...] = get_args(ReplyFormat)


class Section(BaseModel):
    """One titled part of a prompt; `inputs`, `output_format` and `examples` also render generated content."""

    model_config = ConfigDict(frozen=True)

    kind: SectionKind
    title: str
    text: str = ""


class Example(BaseModel):
    """A worked example: inputs and the output the node should give for them."""

    model_config = ConfigDict(frozen=True)

    inputs: dict[str, Any]
    output: dict[str, Any]


DEFAULT_TITLES: dict[str, str] = {
    "task": "Task",
    "inputs": "Inputs",
    "output_format": "Output format",
    "examples": "Examples",
    "guidelines": "Guidelines",
    "text": "Notes",
}
