"""Reading and writing one section's text: the helpers every content operator shares."""

from __future__ import annotations

from microprompts.flows import Flow
from microprompts.flows.address import section_address
from microprompts.nodes import MicroPrompt
from microprompts.optimizers.mutators.base import Move

__all__ = ["MAX_SECTION_CHARS", "TEXT_KINDS", "section_text", "split_address", "text_edit", "with_section_text"]

TEXT_KINDS = ("task", "guidelines")
MAX_SECTION_CHARS = 1200  # a micro-prompt is ~300 tokens in all; one section never needs more


def split_address(address: str) -> tuple[str, str]:
    """(node, kind) of a section address."""
    node, _, kind = address.rpartition(".sections.")
    return node, kind


def section_text(node: MicroPrompt, kind: str) -> str:
    """The text of the node's first section of `kind` ('' when it has none)."""
    section = node.section(kind)
    return section.text if section is not None else ""


def with_section_text(flow: Flow, node: str, kind: str, text: str) -> Flow:
    """`flow` with the text of `node`'s first `kind` section replaced (everything else unchanged)."""
    mp = flow.nodes[node]
    if not isinstance(mp, MicroPrompt):
        raise TypeError(f"{node!r} is not a micro-prompt")
    index = next(i for i, s in enumerate(mp.sections) if s.kind == kind)
    sections = list(mp.sections)
    sections[index] = sections[index].model_copy(update={"text": text})
    return flow.replace_node(mp.replace(sections=sections))


def text_edit(flow: Flow, node: str, kind: str, before: str, after: str, note: str = "") -> Move:
    """The draft that sets the text of `node`'s first `kind` section from `before` to `after`."""
    return Move(
        section_address(node, kind), before, after, lambda: with_section_text(flow, node, kind, after), note=note
    )
