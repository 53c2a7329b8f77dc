"""Editing a flow by address: the small, checked primitives that mutators and search spaces build on."""

from __future__ import annotations

from typing import Any

from microprompts.flows import Flow
from microprompts.nodes import Example, MicroPrompt, Section
from microprompts.nodes.sections import DEFAULT_TITLES

__all__ = ["CANONICAL_ORDER", "find_section", "get_prompt", "insert_section", "parse_section_key", "set_value"]

CANONICAL_ORDER = ("task", "inputs", "output_format", "examples", "guidelines", "text")


def get_prompt(flow: Flow, name: str) -> MicroPrompt:
    """The micro-prompt node `name`; KeyError/TypeError with a clear message otherwise."""
    node = flow.nodes.get(name)
    if node is None:
        raise KeyError(f"flow {flow.name!r} has no node {name!r}")
    if not isinstance(node, MicroPrompt):
        raise TypeError(f"node {name!r} is a {node.kind} node, not a micro-prompt")
    return node


def parse_section_key(key: str) -> tuple[str, int]:
    """``guidelines#1`` -> ("guidelines", 1); ``task`` -> ("task", 0)."""
    kind, _, index = key.partition("#")
    return kind, int(index) if index else 0


def find_section(sections: tuple[Section, ...] | list[Section], kind: str, index: int = 0) -> int | None:
    """Position of the `index`-th section of `kind`, or None."""
    seen = 0
    for position, section in enumerate(sections):
        if section.kind == kind:
            if seen == index:
                return position
            seen += 1
    return None


def insert_section(sections: tuple[Section, ...] | list[Section], section: Section) -> tuple[Section, ...]:
    """Insert `section` after the last section whose kind comes no later in the canonical order."""
    items = list(sections)
    rank = CANONICAL_ORDER.index(section.kind)
    position = 0
    for i, existing in enumerate(items):
        if CANONICAL_ORDER.index(existing.kind) <= rank:
            position = i + 1
    items.insert(position, section)
    return tuple(items)


def _set_section(mp: MicroPrompt, key: str, value: Any) -> MicroPrompt:
    kind, index = parse_section_key(key)
    if kind not in CANONICAL_ORDER:
        raise ValueError(f"unknown section kind {kind!r}")
    sections = list(mp.sections)
    position = find_section(sections, kind, index)
    if value is None:
        if position is not None:
            del sections[position]
        return mp.replace(sections=sections)
    if isinstance(value, str):
        if position is not None:
            sections[position] = sections[position].model_copy(update={"text": value})
            return mp.replace(sections=sections)
        value = Section(kind=kind, title=DEFAULT_TITLES[kind], text=value)  # type: ignore[arg-type]
    if not isinstance(value, Section):
        raise TypeError(f"a section value must be a Section, a str or None, not {type(value).__name__}")
    if value.kind != kind:
        raise ValueError(f"cannot put a {value.kind!r} section at a {kind!r} address")
    if position is not None:
        sections[position] = value
        return mp.replace(sections=sections)
    return mp.replace(sections=insert_section(sections, value))


def set_value(flow: Flow, address: str, value: Any) -> Flow:
    """A copy of `flow` with the part at `address` set to `value` (None removes a section)."""
    node_name, _, rest = address.partition(".")
    part, _, key = rest.partition(".")
    mp = get_prompt(flow, node_name)
    if part == "params" and key:
        new = mp.with_params(**{key: value})
    elif part == "output" and key == "reasoning":
        new = mp.with_params(reasoning=bool(value))
    elif part == "examples" and not key:
        new = mp.replace(examples=[e if isinstance(e, Example) else Example(**e) for e in value or ()])
    elif part == "inputs" and not key:
        new = mp.replace(inputs=dict(value))
    elif part == "sections" and key:
        new = _set_section(mp, key, value)
    else:
        raise ValueError(f"cannot set address {address!r}: expected <node>.params.<name>, <node>.sections.<kind>, "
                         "<node>.examples, <node>.inputs or <node>.output.reasoning")
    return flow.replace_node(new)
