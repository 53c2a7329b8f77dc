"""Reading a rendered user turn back: its data format (markdown, xml or json) and the row's inputs."""

from __future__ import annotations

import json
import re
from typing import Any

_XML = re.compile(r"<([A-Za-z_][\w.-]*)>(.*?)</\1>", re.DOTALL)
_MD = re.compile(r"^([A-Za-z_][\w.-]*): ?(.*)$")
_MARKED = re.compile(
    r"^\[\[ ## (\w+) ## \]\]\n(.*?)(?=\n\n\[\[ ## |\n\nReply with the output fields|\Z)", re.DOTALL | re.MULTILINE
)


def detect_format(text: str) -> str:
    """The renderer's data format of a user turn: json, xml or markdown."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            if isinstance(json.loads(stripped), dict):
                return "json"
        except ValueError:
            pass
    if stripped.startswith("<") and _XML.search(stripped):
        return "xml"
    return "markdown"


def _value(text: str) -> Any:
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def parse_user(text: str) -> dict[str, Any]:
    """A row's inputs back from the rendered user turn (any of the three data formats, or ``markers`` blocks)."""
    if text.startswith("[[ ## "):  # the `markers` reply format's user turn
        return {k: _value(v) for k, v in _MARKED.findall(text)}
    fmt = detect_format(text)
    if fmt == "json":
        return dict(json.loads(text))
    if fmt == "xml":
        return {k: _value(v) for k, v in _XML.findall(text)}
    inputs: dict[str, Any] = {}
    key = ""  # the field a continuation line belongs to ("" before the first field)
    for line in text.splitlines():
        match = _MD.match(line)
        if match:
            key = match.group(1)
            inputs[key] = match.group(2)
        elif key:  # a multi-line string value continues
            inputs[key] += "\n" + line
    return {k: _value(v) for k, v in inputs.items()}
