"""Reading and editing one part of a flow by address: what `Flow.get` and `Flow.set` do, and where a new section
goes (the canonical order of section kinds)."""

from __future__ import annotations

from typing import Any

from microprompts.flows.address import Address, address_values
from microprompts.flows.structure import FlowShape
from microprompts.nodes import Example, MicroPrompt, Params, Section
from microprompts.nodes.sections import SECTION_KINDS, insert_section

__all__ = ["get_part", "insert_section", "prompt_at", "set_part"]


def prompt_at(flow: FlowShape, name: str) -> MicroPrompt:
    """The micro-prompt node `name`; KeyError/TypeError with a clear message otherwise."""
    node = flow.nodes.get(name)
    if node is None:
        raise KeyError(f"flow {flow.name!r} has no node {name!r}")
    if not isinstance(node, MicroPrompt):
        raise TypeError(f"node {name!r} is a {node.kind} node, not a micro-prompt")
    return node


def _find_section(sections: tuple[Section, ...] | list[Section], kind: str, index: int = 0) -> int | None:
    """Position of the `index`-th section of `kind`, or None."""
    seen = 0
    for position, section in enumerate(sections):
        if section.kind == kind:
            if seen == index:
                return position
            seen += 1
    return None


def _set_section(mp: MicroPrompt, kind: str, index: int, value: Any) -> MicroPrompt:
    if kind not in SECTION_KINDS:
        raise ValueError(f"unknown section kind {kind!r}")
    sections = list(mp.sections)
    position = _find_section(sections, kind, index)
    if value is None:
        if position is not None:
            del sections[position]
        return mp.replace(sections=sections)
    if isinstance(value, str):
        if position is not None:
            sections[position] = sections[position].model_copy(update={"text": value})
            return mp.replace(sections=sections)
        value = Section.of(kind, value)  # type: ignore[arg-type]
    if not isinstance(value, Section):
        raise TypeError(f"a section value must be a Section, a str or None, not {type(value).__name__}")
    if value.kind != kind:
        raise ValueError(f"cannot put a {value.kind!r} section at a {kind!r} address")
    if position is not None:
        sections[position] = value
        return mp.replace(sections=sections)
    return mp.replace(sections=insert_section(sections, value))


def set_part(flow: FlowShape, address: str | Address, value: Any) -> MicroPrompt:
    """The micro-prompt at `address` with that part set to `value` (None removes a section)."""
    text = str(address)
    mp = prompt_at(flow, text.partition(".")[0])
    where = Address.parse(text)
    part, key = where.part, where.key
    if part == "params" and key:
        return mp.with_params(**{key: value})
    if part == "output" and key == "reasoning":
        return mp.with_params(reasoning=bool(value))
    if part == "examples" and not key:
        return mp.replace(examples=[e if isinstance(e, Example) else Example(**e) for e in value or ()])
    if part == "inputs" and not key:
        return mp.replace(inputs=dict(value))
    if part == "sections" and key:
        return _set_section(mp, key, where.index, value)
    raise ValueError(
        f"cannot set address {text!r}: expected <node>.params.<name>, <node>.sections.<kind>, "
        "<node>.examples, <node>.inputs or <node>.output.reasoning"
    )


def get_part(flow: FlowShape, address: str | Address) -> Any:
    """The value at `address`: what `set_part` takes there (a Section or None, a parameter, the examples, the input
    descriptions), or the JSON value of a part it cannot set (section order, output schema, function, graph)."""
    text = str(address)
    where = Address.parse(text)
    if where.node is not None and where.node in flow.nodes and isinstance(flow.nodes[where.node], MicroPrompt):
        mp = prompt_at(flow, where.node)
        if where.part == "params" and where.key in Params.model_fields and where.key != "reasoning":
            return getattr(mp.params, where.key)
        if where.part == "output" and where.key == "reasoning":
            return mp.params.reasoning
        if where.part == "examples" and where.key is None:
            return mp.examples
        if where.part == "inputs" and where.key is None:
            return dict(mp.inputs)
        if where.part == "sections" and where.key in SECTION_KINDS:
            position = _find_section(mp.sections, where.key, where.index)
            return None if position is None else mp.sections[position]
    values = address_values(flow)
    if text not in values:
        raise KeyError(f"flow {flow.name!r} has no address {text!r}")
    return values[text]
