"""Stable addresses for every part of a flow, freezing by pattern, and the diff that checks what a mutation touched.

Addresses: ``<node>.sections`` (the order of its sections), ``<node>.sections.<kind>[#i]`` (the i-th section of a
kind, 0-based, ``#0`` left out), ``<node>.params.<name>``, ``<node>.output.reasoning``, ``<node>.output.schema``,
``<node>.examples``, ``<node>.inputs`` (input descriptions), ``<node>.function`` (a function node), ``graph.nodes``,
``graph.edges`` (edges and branches) and ``graph.state``. Patterns are fnmatch patterns; a pattern also covers the
addresses below it (``reply`` covers ``reply.sections.task``), and ``reply.task`` is shorthand for
``reply.sections.task``. Journals and artifacts hold these strings, so their format never changes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from microprompts.flows.structure import FlowShape
from microprompts.nodes import FunctionNode, MicroPrompt, Params
from microprompts.nodes.schema import json_schema
from microprompts.nodes.sections import SECTION_KINDS

__all__ = [
    "Address",
    "MutationViolation",
    "address_values",
    "check_mutation",
    "covers",
    "is_frozen",
    "node_of",
    "normalize_pattern",
    "section_address",
    "touched",
]

GRAPH = "graph"
NODE_PARTS = ("sections", "params", "output", "examples", "inputs", "function")
_SECTION_SHORTHAND = tuple(kind for kind in SECTION_KINDS if kind not in NODE_PARTS)
_PARAM_NAMES = tuple(name for name in Params.model_fields if name != "reasoning")


@dataclass(frozen=True)
class Address:
    """One part of a flow: its node (None for ``graph.*``), the part, and the key (kind, parameter...) and index
    below it; `str()` gives the stable address string and `parse` reads it back."""

    node: str | None
    part: str
    key: str | None = None
    index: int = 0  # the i-th section of a kind (0-based): ``#i`` in the string, left out for 0

    @classmethod
    def parse(cls, text: str) -> Address:
        """The address a string names: ``reply.sections.guidelines#1`` -> (reply, sections, guidelines, 1)."""
        head, _, rest = text.partition(".")
        part, _, below = rest.partition(".")
        key, _, index = below.partition("#")
        return cls(None if head == GRAPH else head, part, key or None, int(index) if index else 0)

    @classmethod
    def section(cls, node: str, kind: str, index: int = 0) -> Address:
        """The `index`-th section of `kind` in `node`."""
        return cls(node, "sections", kind, index)

    @classmethod
    def param(cls, node: str, name: str) -> Address:
        """A parameter of `node` (the reasoning field lives at ``<node>.output.reasoning``)."""
        return cls(node, "params", name)

    def __str__(self) -> str:
        text = f"{GRAPH if self.node is None else self.node}.{self.part}"
        if self.key is not None:
            text += f".{self.key}"
        return text + (f"#{self.index}" if self.index else "")


class MutationViolation(ValueError):
    """A child flow that changed something its operator did not declare, or something frozen."""


def section_address(node: str, kind: str, index: int = 0) -> str:
    """The address string of the `index`-th section of `kind` in `node` (``#0`` is left out)."""
    return str(Address.section(node, kind, index))


def _ref(obj: Any) -> str:
    module, name = getattr(obj, "__module__", "?"), getattr(obj, "__qualname__", repr(obj))
    return f"{module}:{name}"


def _prompt_values(mp: MicroPrompt) -> dict[str, Any]:
    values: dict[str, Any] = {}
    counts: dict[str, int] = {}
    order = []
    for section in mp.sections:
        index = counts.get(section.kind, 0)
        counts[section.kind] = index + 1
        address = section_address(mp.name, section.kind, index)
        values[address] = {"title": section.title, "text": section.text}
        order.append(address.rsplit(".", 1)[1])
    values[f"{mp.name}.sections"] = order
    params = mp.params.model_dump()
    values[f"{mp.name}.output.reasoning"] = params.pop("reasoning")
    for key, value in params.items():
        values[str(Address.param(mp.name, key))] = value
    values[f"{mp.name}.output.schema"] = json_schema(mp.output)
    values[f"{mp.name}.examples"] = [e.model_dump(mode="json") for e in mp.examples]
    values[f"{mp.name}.inputs"] = dict(mp.inputs)
    return values


def address_values(flow: FlowShape) -> dict[str, Any]:
    """Every address of `flow` with its value (JSON-able), for diffs and reports."""
    values: dict[str, Any] = {}
    for node in flow.nodes.values():
        if isinstance(node, MicroPrompt):
            values.update(_prompt_values(node))
        elif isinstance(node, FunctionNode):
            values[f"{node.name}.function"] = {
                "fn": _ref(node.fn),
                "reads": list(node.reads),
                "writes": list(node.writes),
            }
    values["graph.nodes"] = sorted(f"{name}:{node.kind}" for name, node in flow.nodes.items())
    values["graph.edges"] = {
        "edges": sorted([list(e) for e in flow.edges]),
        "branches": sorted(
            [[b.source, _ref(b.router), sorted(b.mapping.items())] for b in flow.branches], key=json.dumps
        ),
    }
    values["graph.state"] = {
        "state": _ref(flow.state) if flow.state is not None else None,
        "inputs": list(flow.inputs) if flow.inputs is not None else None,
    }
    return values


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def touched(parent: FlowShape, child: FlowShape) -> set[str]:
    """The addresses whose values differ between two flows (added and removed ones included)."""
    before, after = address_values(parent), address_values(child)
    return {
        a
        for a in set(before) | set(after)
        if a not in before or a not in after or _canonical(before[a]) != _canonical(after[a])
    }


def node_of(address: str) -> str | None:
    """The node an address belongs to, or None for ``graph.*`` addresses."""
    head = address.split(".", 1)[0]
    return None if head == GRAPH else head


def normalize_pattern(pattern: str) -> str:
    """Expand shorthands: ``reply.task`` -> ``reply.sections.task``, ``reply.temperature`` ->
    ``reply.params.temperature``, ``reply.reasoning``/``reply.params.reasoning`` -> ``reply.output.reasoning``."""
    parts = pattern.split(".")
    if len(parts) < 2 or parts[0] == GRAPH:
        return pattern
    second = parts[1]
    if second in NODE_PARTS:
        if second == "params" and len(parts) > 2 and parts[2] == "reasoning":
            return ".".join([parts[0], "output", "reasoning", *parts[3:]])
        return pattern
    if second.split("#")[0] in _SECTION_SHORTHAND:
        return ".".join([parts[0], "sections", *parts[1:]])
    if second in _PARAM_NAMES:
        return ".".join([parts[0], "params", *parts[1:]])
    if second == "reasoning":
        return ".".join([parts[0], "output", *parts[1:]])
    return pattern


def covers(pattern: str, address: str) -> bool:
    """True when `pattern` (normalized) names `address` or something above it."""
    pattern = normalize_pattern(pattern)
    return fnmatchcase(address, pattern) or address.startswith(pattern + ".") or address.startswith(pattern + "#")


def is_frozen(address: str, frozen: Iterable[str]) -> bool:
    """True when any frozen pattern covers `address`."""
    return any(covers(p, address) for p in frozen)


def check_mutation(
    parent: FlowShape, child: FlowShape, declared: Sequence[str], frozen: Sequence[str] = ()
) -> set[str]:
    """The addresses a child changed; raises MutationViolation if one is undeclared or frozen.

    Declaring ``graph.nodes`` covers every address of a node that was added or removed; parts of an added node are
    never frozen (they did not exist), parts of a removed one are.
    """
    diff = touched(parent, child)
    added = set(child.nodes) - set(parent.nodes)
    changed_nodes = added | (set(parent.nodes) - set(child.nodes))
    node_level = any(covers(d, "graph.nodes") for d in declared)
    undeclared = sorted(
        a for a in diff if not any(covers(d, a) for d in declared) and not (node_level and node_of(a) in changed_nodes)
    )
    if undeclared:
        raise MutationViolation(f"changed undeclared address(es) {undeclared[:5]}")
    frozen_hits = sorted(a for a in diff if node_of(a) not in added and is_frozen(a, frozen))
    if frozen_hits:
        raise MutationViolation(f"changed frozen address(es) {frozen_hits[:5]}")
    return diff
