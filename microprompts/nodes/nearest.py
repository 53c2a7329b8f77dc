"""Examples chosen per row (`params.nearest_examples`): the k whose inputs are most like the row's, as in KATE (Liu
et al. 2022, "What Makes Good In-Context Examples for GPT-3?"), by string similarity rather than embeddings, so it
needs no model and no index: rapidfuzz's token-set ratio per input field, averaged over the fields."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from rapidfuzz import fuzz

from microprompts.nodes.sections import Example

__all__ = ["NEAREST_DEFAULT", "nearest"]

NEAREST_DEFAULT = 3  # examples shown per row when `n_examples` is unset


def _text(value: Any) -> str:
    """A field's value as text: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _similarity(example: Example, inputs: Mapping[str, Any]) -> float:
    """The mean token-set ratio (0-100) of the example's input fields and the row's, over the example's fields; a
    field the row lacks counts 0. Each field weighs the same, so a long list does not drown a short preference."""
    fields = list(example.inputs)
    if not fields:
        return 0.0
    scores = [fuzz.token_set_ratio(_text(example.inputs[k]), _text(inputs[k])) if k in inputs else 0.0 for k in fields]
    return sum(scores) / len(scores)


def nearest(examples: Sequence[Example], inputs: Mapping[str, Any], k: int) -> tuple[Example, ...]:
    """The `k` examples most like `inputs`, the most alike last (nearest the row it precedes); ties keep the
    examples' order."""
    scored = sorted(range(len(examples)), key=lambda i: (-_similarity(examples[i], inputs), i))[: max(0, k)]
    return tuple(examples[i] for i in reversed(scored))
