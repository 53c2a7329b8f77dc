"""Resolving a FLOW argument: an artifact JSON, `path/file.py:name` or `package.module:name`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from microprompts.flows.artifact import ArtifactError
from microprompts.flows.flow import Flow
from microprompts.nodes import RefError, load_object


def load_flow_ref(ref: str, allow: Sequence[str] | None = None) -> Flow:
    """The Flow a reference names; a callable that returns a Flow is called. Raises RefError/ArtifactError."""
    if ref.endswith(".json"):
        if not Path(ref).is_file():
            raise ArtifactError(f"no artifact file {ref}")
        return Flow.load(ref, allow)
    if ":" not in ref:
        raise RefError(f"unknown flow reference {ref!r}: expected FILE.json, path/file.py:name or module:name")
    obj = load_object(ref)
    if callable(obj) and not isinstance(obj, Flow):
        obj = obj()
    if not isinstance(obj, Flow):
        raise RefError(f"{ref!r} is a {type(obj).__name__}, not a microprompts Flow")
    return obj
