"""Parsing a model's reply (a JSON object, `field: value` lines or `[[ ## field ## ]]` blocks) into the node's
typed output, with a clear error carrying the raw reply."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from langchain_core.utils.json import parse_partial_json
from pydantic import BaseModel, ValidationError

from microprompts.models.phases import phase
from microprompts.nodes.schema import COMPLETED, json_schema, marker

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
    """The JSON object in a reply: the whole text, a fenced block, or the outermost braces (tried in that order)."""
    for candidate in _candidates(text):
        try:
            return json.loads(candidate)
        except (json.JSONDecodeError, ValueError):
            continue
    raise ValueError("no JSON object found")


def _candidates(text: str) -> Iterator[str]:
    """What may hold the JSON, in the order tried; made as they are asked for (most replies are the whole text)."""
    yield text.strip()
    yield from (m.strip() for m in _FENCE.findall(text))
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        yield text[start : end + 1]


def parse_reply(text: str, model: type[BaseModel]) -> BaseModel:
    """Validate a reply against `model`; raises ValueError with a short reason."""
    with phase("parsing"):
        try:  # most replies are the object alone: parsed and validated in one pass
            return model.model_validate_json(text)
        except ValidationError:
            pass  # anything else is read as before, and its error said as before
        data = extract_json(text)
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        return _validate(model, data)


def parse_cut_json(text: str, model: type[BaseModel]) -> BaseModel:
    """A JSON reply cut at its token limit, read as far as it goes: the values it finished (`finished_json`), its
    open lists and objects closed (langchain-core's `parse_partial_json`), then validated; raises ValueError when
    what is left does not validate."""
    with phase("parsing"):
        return _validate(model, cut_json(text))


def cut_json(text: str, whole_items: bool = False) -> dict[str, Any]:
    """The JSON object of a reply cut at its token limit, as far as it went: the values it finished
    (`finished_json`), its open lists and objects closed (langchain-core's `parse_partial_json`); with `whole_items`,
    less the item of a top-level list the cut came inside (a row half written). Raises ValueError when the cut came
    before the reply held an object."""
    finished, depth = _finished(text.strip())
    data = parse_partial_json(finished)
    if not isinstance(data, dict):
        raise ValueError("the reply was cut before it held a JSON object")
    last = next(reversed(data), None)  # the key being written when the cut came
    if whole_items and depth > 2 and last is not None and isinstance(data[last], list) and data[last]:
        data[last] = data[last][:-1]
    return data


def finished_json(text: str) -> str:
    """The start of a cut JSON text up to its last finished value: up to the last comma, bracket or closing quote
    outside a string. A value cut short is dropped, never kept cut: the "no" of "not sure", the 2 of 25."""
    return _finished(text)[0]


def _finished(text: str) -> tuple[str, int]:
    """`finished_json` and how many lists and objects are still open at its end."""
    end, depth, open_at_end, in_string, escaped = 0, 0, 0, False, False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string, end, open_at_end = False, i + 1, depth
        elif ch == '"':
            in_string = True
        elif ch in ",[]{}":
            depth += 1 if ch in "[{" else -1 if ch in "]}" else 0
            end, open_at_end = i + 1, depth
    return text[:end], open_at_end


def _validate(model: type[BaseModel], data: dict[str, Any]) -> BaseModel:
    """`model` from parsed data; raises ValueError naming the first field that is wrong."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "(root)"
        raise ValueError(f"{where}: {first.get('msg')}") from exc


_DECOR = " \t\r\n*`\"'"
_RUN_ON = re.compile(r"\n\s*Example \d+\s*\n")  # the heading of a worked example the model went on to invent


def _label_pattern(names: list[str]) -> re.Pattern[str]:
    """A line that starts a field: `name: value`, `**Name:** value`, or a label alone (`[[ ## name ## ]]`)."""
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(
        rf"^[^\w\n]*(?P<name>{alternatives})(?:[^\w\n:=]*[:=]|[^\w\n]*$)[ \t]*(?P<rest>.*)$",
        re.IGNORECASE | re.MULTILINE,
    )


def _segments(text: str, names: list[str]) -> dict[str, str]:
    """Each field's text: from its label to the next label. The first one wins when a field repeats: a small model
    that runs on past its answer (into another "Example") writes the same labels again."""
    matches = list(_label_pattern(names).finditer(text))
    by_lower = {n.lower(): n for n in names}
    out: dict[str, str] = {}
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        out.setdefault(by_lower[m.group("name").lower()], text[m.start("rest") : end])
    return out


def _coerce(raw: str, prop: dict[str, Any]) -> Any:
    """One field's text as the JSON value its schema asks for, leniently (case, decoration, surrounding words)."""
    text = raw.strip(_DECOR)
    branches = [p for p in prop.get("anyOf", [prop]) if p.get("type") != "null"]
    if "anyOf" in prop and text.lower() in {"", "null", "none"}:
        return None
    prop = branches[0] if branches else prop
    if text[:1] in "[{":
        try:
            return _cut(json.loads(text), prop)
        except ValueError:
            pass
    kind = prop.get("type")
    if "enum" in prop or kind in ("integer", "number", "boolean"):
        text = text.splitlines()[0].strip(_DECOR + ".") if text else text
    if "enum" in prop:
        values = {str(v).lower(): v for v in prop["enum"]}
        if text.lower() in values:
            return values[text.lower()]
        found = [
            (m.start(), values[m.group(0).lower()])
            for v in values
            if (m := re.search(rf"(?<!\w){re.escape(v)}(?!\w)", text, re.IGNORECASE))
        ]
        return min(found, key=lambda f: f[0])[1] if found else text
    if kind in ("integer", "number"):
        number = re.search(r"-?\d+(?:\.\d+)?", text.replace(",", ""))
        return number.group(0) if number else text
    if kind == "array":
        items = [i.strip(_DECOR + "-•") for i in re.split(r"[,;\n]", text)]
        return _cut([i for i in items if i], prop)
    return text


def _cut(value: Any, prop: dict[str, Any]) -> Any:
    """A list cut to the schema's `maxItems` (lists are best first; a JSON reply's grammar enforces the same bound)."""
    limit = prop.get("maxItems")
    return value[:limit] if isinstance(value, list) and isinstance(limit, int) else value


def parse_lines(text: str, model: type[BaseModel]) -> BaseModel:
    """Validate a `field: value` lines reply against `model`; a JSON object, or bare text when the model has one
    field, is taken too. Raises ValueError with a short reason."""
    with phase("parsing"):
        try:
            return parse_reply(text, model)  # the model wrote JSON after all
        except ValueError:
            pass
        props: dict[str, Any] = json_schema(model).get("properties", {})
        names = list(props)
        text = _RUN_ON.split(text, maxsplit=1)[0]
        segments = _segments(text, names)
        if not segments:
            if len(names) != 1:
                raise ValueError(f"no `{names[0] if names else 'field'}: value` line found")
            segments = {names[0]: text}
        return _validate(model, {name: _coerce(value, props[name]) for name, value in segments.items()})


def parse_markers(text: str, model: type[BaseModel]) -> BaseModel:
    """Validate a `markers` reply (`[[ ## name ## ]]` blocks) against `model`: the text after the completion marker
    is dropped, and the rest is read as lines are, whose labels include a marker alone on its line."""
    end = text.find(marker(COMPLETED))
    return parse_lines(text if end < 0 else text[:end], model)
