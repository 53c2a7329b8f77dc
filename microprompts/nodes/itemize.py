"""Itemized totals: a whole-number output the model answers as a list of the things mentioned, added up in code.

A small model asked for a total often writes a number it has seen (Qwen 0.5B answers 10 on a third of BBH
object_counting rows); asked to list every thing mentioned with how many of it there are and whether it counts, it
lists well and leaves the filtering and the addition to code, as program-aided prompting (PAL) does
(`benchmarks/results/itemize.md`). The node's output schema and what it writes to the state are unchanged.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel, Field, create_model

__all__ = ["WORDING", "CountedItem", "added_up", "itemizable", "itemize_problems", "itemized", "items_key"]

# How the list is described to the model. Measured on 60 object_counting training rows with Qwen 0.5B: listing
# only the things of the asked kind scored 0.33 to 0.52 by the wording (the model often listed nothing); listing every
# thing mentioned, each flagged as counted or not, scored 0.58 and never gave an empty list.
WORDING = "Every thing mentioned, with how many of it there are and whether it is of the kind asked about."


class CountedItem(BaseModel):
    """One thing the input mentions, how many of it there are, and whether the total counts it."""

    name: str
    quantity: int = Field(ge=0)
    counted: bool


def itemizable(output: type[BaseModel]) -> list[str]:
    """The output's whole-number fields (an `int`, not a `bool`): those a node may answer by listing."""
    return [name for name, info in output.model_fields.items() if info.annotation is int]


def items_key(output: type[BaseModel], field: str) -> str:
    """The reply key of the list that replaces `field`: `items`, unless the output already has a field of that name."""
    return "items" if "items" not in output.model_fields else f"{field}_items"


@lru_cache(maxsize=256)
def itemized(output: type[BaseModel], field: str) -> type[BaseModel]:
    """The reply schema: the output's fields in order, `field` replaced by the list of counted things."""
    fields: dict[str, Any] = {}
    for name, info in output.model_fields.items():
        if name != field:
            fields[name] = (info.annotation, info)
            continue
        fields[items_key(output, field)] = (list[CountedItem], Field(description=WORDING))
    return create_model(f"{output.__name__}Itemized", **fields)


def added_up(data: dict[str, Any], output: type[BaseModel], field: str) -> dict[str, Any]:
    """A validated reply turned back into the output: the list dropped, `field` set to the sum of the quantities of
    the things it counts."""
    out = dict(data)
    items = out.pop(items_key(output, field), None) or []
    out[field] = sum(int(item["quantity"]) for item in items if item["counted"])
    return out


def itemize_problems(name: str, output: type[BaseModel], field: str, has_examples: bool, calibrated: bool) -> list[str]:
    """Why node `name` cannot answer `field` by listing: not a whole-number output field, examples that show the total
    rather than the list the model is asked for, or a calibrated label (scored, not written)."""
    if field not in itemizable(output):
        return [f"node {name!r}: itemize names {field!r}, which is not a whole-number (int) field of its output"]
    problems = []
    if has_examples:
        problems.append(f"node {name!r}: itemize asks for a list of counted things, which its examples do not show")
    if calibrated:
        problems.append(f"node {name!r}: itemize and calibration cannot both be set")
    return problems
