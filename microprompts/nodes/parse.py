"""Parsing a model's reply into the node's typed output, with a clear error carrying the raw reply."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ValidationError

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


class OutputParseError(ValueError):
    """A reply that does not satisfy the node's output schema, after repair; `raw` is what the model said."""

    def __init__(self, node: str, raw: str, reason: str) -> None:
        self.node = node
        self.raw = raw
        self.reason = reason
        shown = raw if len(raw) <= 200 else raw[:200] + "..."
        super().__init__(f"node {node!r}: reply does not match its output schema ({reason}); reply was {shown!r}")


def extract_json(text: str) -> Any:
    """The JSON object in a reply: the whole text, a fenced block, or the outermost braces."""
    candidates = [text.strip()]
    candidates += [m.strip() for m in _FENCE.findall(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except (json.JSONDecodeError, ValueError):
            continue
    raise ValueError("no JSON object found")


def parse_reply(text: str, model: type[BaseModel]) -> BaseModel:
    """Validate a reply against `model`; raises ValueError with a short reason."""
    data = extract_json(text)
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "(root)"
        raise ValueError(f"{where}: {first.get('msg')}") from exc
