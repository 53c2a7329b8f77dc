"""Sections, examples and parameters: the ordered, typed parts a micro-prompt is made of."""

from __future__ import annotations

import math
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from microprompts.models.soft_prompt import SoftPromptRef

# The kinds of section, in their canonical order: a new section goes after the last one whose kind comes no later.
SectionKind = Literal["task", "inputs", "output_format", "examples", "guidelines", "text"]
SECTION_KINDS: tuple[str, ...] = get_args(SectionKind)
DEFAULT_TITLES: dict[str, str] = {  # the title a section of each kind gets when none is given
    "task": "Task",
    "inputs": "Inputs",
    "output_format": "Output format",
    "examples": "Examples",
    "guidelines": "Guidelines",
    "text": "Notes",
}
assert tuple(DEFAULT_TITLES) == SECTION_KINDS, "one title per section kind, in the canonical order"

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

    @classmethod
    def of(cls, kind: SectionKind, text: str = "") -> Section:
        """A section of `kind` under its default title (`DEFAULT_TITLES`)."""
        return cls(kind=kind, title=DEFAULT_TITLES[kind], text=text)


class Example(BaseModel):
    """A worked example: inputs and the output the node should give for them."""

    model_config = ConfigDict(frozen=True)

    inputs: dict[str, Any]
    output: dict[str, Any]


class Calibration(BaseModel):
    """Calibrated labels (Zhao et al. 2021, "Calibrate before use"): the node's one output `field` is not generated
    but chosen among `labels`, by the model's log-probability of the reply giving each label plus that label's `bias`
    (fitted on scored rows, so the choice is never worse there than the best constant answer)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str = Field(min_length=1)
    labels: tuple[str, ...] = Field(min_length=2, max_length=32)
    bias: tuple[float, ...]

    @model_validator(mode="after")
    def _consistent(self) -> Calibration:
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"calibration labels must be distinct, got {list(self.labels)}")
        if len(self.bias) != len(self.labels):
            n, m = len(self.labels), len(self.bias)
            raise ValueError(f"calibration needs one bias per label: {n} labels, {m} biases")
        if not all(math.isfinite(b) for b in self.bias):
            raise ValueError("calibration biases must be finite numbers")
        return self


class Params(BaseModel):
    """A node's tunable parameters: model, sampling, example count, data and reply formats, reasoning, votes, and a
    soft prompt (only its reference: the tensors lie in a safetensors file beside the artifact)."""

    model_config = ConfigDict(frozen=True, extra="forbid")  # a misspelt parameter is an error, not a no-op

    model: str | None = None
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(default=256, ge=1, le=8192)
    n_examples: int | None = Field(default=None, ge=0)
    # Each row shown the `n_examples` (3 when unset) examples whose inputs are most like its own, not the first ones.
    nearest_examples: bool = False
    data_format: DataFormat = "markdown"
    reply_format: ReplyFormat = "json"
    reasoning: bool = False
    samples: int = Field(default=1, ge=1, le=15)
    choices: dict[str, str] = Field(default_factory=dict)  # output field -> input key listing its allowed values
    soft_prompt: SoftPromptRef | None = None  # runs only on the `hf:` model it was trained on (a TorchChatModel)
    calibration: Calibration | None = None  # the label scored, not generated: needs a model that gives log-probs
    itemize: str | None = None  # a whole-number output field the model answers as a list of things, added up here


def insert_section(sections: tuple[Section, ...] | list[Section], section: Section) -> tuple[Section, ...]:
    """Insert `section` after the last section whose kind comes no later in the canonical order."""
    items = list(sections)
    rank = SECTION_KINDS.index(section.kind)
    position = 0
    for i, existing in enumerate(items):
        if SECTION_KINDS.index(existing.kind) <= rank:
            position = i + 1
    items.insert(position, section)
    return tuple(items)
