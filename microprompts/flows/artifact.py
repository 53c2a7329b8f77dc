"""The flow artifact: plain JSON with a schema version and a content hash; code only by import path."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from microprompts._io import assert_no_secrets, atomic_write_text
from microprompts.flows.structure import Branch, FlowShape
from microprompts.flows.validate import validate_flow
from microprompts.models.soft_prompt import SoftPromptError, SoftPromptRef, copy_verified, read_verified
from microprompts.models.spec import note_artifact_model
from microprompts.nodes import FunctionNode, MicroPrompt, Params, RefError, Section, load_object, ref_of
from microprompts.nodes.function import DEFAULT_ALLOWED
from microprompts.nodes.schema import json_schema, model_from_schema

SCHEMA_VERSION = 1
KIND = "microprompts.flow"


class ArtifactError(ValueError):
    """An artifact that cannot be read: bad JSON, wrong version, tampered content, disallowed import."""


def content_hash(data: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of everything but the hash itself; ArtifactError where there is none (a dict
    built in Python may mix key types, or hold values JSON cannot write)."""
    body = {k: v for k, v in data.items() if k != "content_hash"}
    try:
        blob = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"malformed artifact: not canonical JSON ({exc})") from exc
    return "sha256:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _output_ref(output: type[BaseModel]) -> str | None:
    kept = getattr(output, "__microprompts_ref__", None)
    if kept:
        return str(kept)  # rebuilt from an artifact whose class was not imported: keep its ref, and its hash
    if output.__module__ == "microprompts.nodes.schema":
        return None  # rebuilt from a schema or derived (reasoning): no importable class behind it
    try:
        ref = ref_of(output)
    except RefError:
        return None
    return None if ref.startswith("pydantic.") or "WithReasoning" in ref else ref


def node_to_dict(node: MicroPrompt | FunctionNode) -> dict[str, Any]:
    """One node as JSON."""
    if isinstance(node, FunctionNode):
        return {
            "kind": "function",
            "name": node.name,
            "fn": node.ref,
            "reads": list(node.reads),
            "writes": list(node.writes),
        }
    data: dict[str, Any] = {
        "kind": "micro_prompt",
        "name": node.name,
        "sections": [s.model_dump() for s in node.sections],
        "inputs": dict(node.inputs),
        "output": {"schema": json_schema(node.output), "ref": _output_ref(node.output)},
        "examples": [e.model_dump(mode="json") for e in node.examples],
        "params": _params(node.params),
    }
    if node.input_schemas:  # only when typed, so an untyped node's artifact (and its hash) is as it always was
        data["input_types"] = {k: dict(s) for k, s in node.input_schemas.items()}
    return data


def _params(params: Params) -> dict[str, Any]:
    """A node's parameters as JSON: a soft prompt as its reference only (file, sha256, method, size, base model), and
    no `soft_prompt`, `calibration` or `itemize` key without one, so an artifact without them (and its hash) is as
    it was."""
    data = params.model_dump(mode="json")
    for optional in ("soft_prompt", "calibration", "itemize"):  # absent unless set: older artifacts keep their hashes
        if data.get(optional) is None:
            data.pop(optional, None)
    return data


def flow_to_dict(flow: FlowShape) -> dict[str, Any]:
    """The whole flow as JSON, hashed."""
    data: dict[str, Any] = {
        "kind": KIND,
        "schema_version": SCHEMA_VERSION,
        "name": flow.name,
        "state": ref_of(flow.state) if flow.state is not None else None,
        "inputs": list(flow.inputs) if flow.inputs is not None else None,
        "nodes": [node_to_dict(n) for n in flow.nodes.values()],
        "edges": [list(e) for e in flow.edges],
        "branches": [{"source": b.source, "router": ref_of(b.router), "mapping": b.mapping} for b in flow.branches],
    }
    data["content_hash"] = content_hash(data)
    return data


def node_from_dict(data: dict[str, Any], allow: Sequence[str] | None) -> MicroPrompt | FunctionNode:
    """One node from JSON."""
    if data.get("kind") == "function":
        return FunctionNode(
            data["name"], data["fn"], reads=data.get("reads", []), writes=data.get("writes", []), allow=allow
        )
    if data.get("kind") != "micro_prompt":
        raise ArtifactError(f"node {data.get('name')!r} has unknown kind {data.get('kind')!r}")
    out = data["output"]
    output = model_from_schema(out["schema"])
    if out.get("ref"):
        try:
            candidate = load_object(out["ref"], allow)
            if isinstance(candidate, type) and json_schema(candidate) == out["schema"]:
                output = candidate
        except RefError:
            pass  # rebuilt from its schema instead: the artifact still runs, with no code imported
        if output.__module__ == "microprompts.nodes.schema":
            output.__microprompts_ref__ = out["ref"]  # type: ignore[attr-defined]  # same artifact, same hash
    params = Params(**data.get("params", {}))
    input_types = data.get("input_types") or {}
    if not isinstance(input_types, dict) or not all(isinstance(s, dict) for s in input_types.values()):
        raise ArtifactError(f"node {data['name']!r}: 'input_types' must map inputs to JSON Schema objects")
    note_artifact_model(params.model)  # a model URL from an artifact gets no API key unless the user names it too
    return MicroPrompt(
        data["name"],
        sections=[Section(**s) for s in data["sections"]],
        inputs=_descriptions(data["inputs"]),
        output=output,
        examples=data.get("examples", []),
        params=params,
    ).replace(input_schemas=input_types)  # plain JSON types only: rebuilt as Python types, never imported


def _descriptions(inputs: Any) -> dict[str, str]:
    """A node's input descriptions as the artifact gives them: names to strings, nothing else (no types here)."""
    if not isinstance(inputs, dict) or not all(isinstance(v, str) for v in inputs.values()):
        raise ArtifactError("malformed artifact: a node's 'inputs' must map names to description strings")
    return {str(k): v for k, v in inputs.items()}


def flow_parts(data: dict[str, Any], allow: Sequence[str] | None = None) -> dict[str, Any]:
    """A flow's parts (the keyword arguments of `Flow`) from its artifact; checks kind, version and hash;
    imports only from `allow` (default list)."""
    allow = tuple(allow) if allow is not None else DEFAULT_ALLOWED
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise ArtifactError(f"not a microprompts flow artifact (kind must be {KIND!r})")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ArtifactError(f"artifact schema_version {data.get('schema_version')!r} is not {SCHEMA_VERSION}")
    if data.get("content_hash") != content_hash(data):
        raise ArtifactError("artifact content does not match its content_hash (edited or corrupted)")
    try:
        nodes = [node_from_dict(n, allow) for n in data["nodes"]]
        state = load_object(data["state"], allow) if data.get("state") else None
        branches = [
            Branch(b["source"], load_object(b["router"], allow), dict(b["mapping"])) for b in data.get("branches", [])
        ]
        edges = [(str(a), str(b)) for a, b in data.get("edges", [])]
        inputs = data.get("inputs")
        if inputs is not None and not (isinstance(inputs, list) and all(isinstance(k, str) for k in inputs)):
            raise ArtifactError("malformed artifact: 'inputs' must be a list of strings")
        if not isinstance(data["name"], str):
            raise ArtifactError("malformed artifact: 'name' must be a string")
        return {
            "name": data["name"],
            "state": state,
            "inputs": inputs,
            "nodes": {n.name: n for n in nodes},
            "edges": edges,
            "branches": branches,
        }
    except ArtifactError:
        raise
    except Exception as exc:  # wrong shapes raise AttributeError, pydantic's errors...: all malformed
        raise ArtifactError(f"malformed artifact: {type(exc).__name__}: {exc}") from exc


def save_flow(flow: FlowShape, path: str | Path) -> str:
    """Validate, serialize, refuse secrets, copy the nodes' soft-prompt files beside `path` (each verified and written
    atomically, before the JSON, so a reader never finds the JSON without its files), write the JSON atomically;
    returns the content hash."""
    validate_flow(flow)
    data = flow_to_dict(flow)
    text = json.dumps(data, indent=2, ensure_ascii=False)
    assert_no_secrets(text, f"artifact {path}")
    target = Path(path).resolve().parent
    for node, ref in soft_refs(flow.nodes.values()):
        try:
            copy_verified(ref, flow.soft_dir or target, target)
        except SoftPromptError as exc:
            raise ArtifactError(f"node {node!r}: cannot save soft prompt file {ref.file}: {exc}") from exc
    atomic_write_text(path, text + "\n")
    return data["content_hash"]


def soft_refs(nodes: Iterable[MicroPrompt | FunctionNode]) -> list[tuple[str, SoftPromptRef]]:
    """(node name, soft prompt reference) for every micro-prompt that holds a soft prompt, in order."""
    return [(n.name, n.params.soft_prompt) for n in nodes if isinstance(n, MicroPrompt) and n.params.soft_prompt]


def verify_soft_files(nodes: Iterable[MicroPrompt | FunctionNode], directory: str | Path) -> None:
    """Check that every soft-prompt file the nodes name lies in `directory` with the SHA-256 the artifact gives:
    ArtifactError naming the node and the file otherwise. Reads and hashes bytes only; nothing is parsed or run."""
    for node, ref in soft_refs(nodes):
        try:
            read_verified(ref, directory)
        except SoftPromptError as exc:
            raise ArtifactError(f"node {node!r}: soft prompt file {ref.file} is refused: {exc}") from exc


def read_artifact(path: str | Path) -> dict[str, Any]:
    """An artifact file's JSON (checked by `flow_parts`); ArtifactError when it cannot be read or parsed."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ArtifactError(f"cannot read artifact {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"artifact {path} is not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    return data
