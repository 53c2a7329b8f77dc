"""Phrase-level edits that need no model (GrIPS-like): delete one sentence, or swap two, in a node's text."""

from __future__ import annotations

import re

from microprompts.flows import Flow
from microprompts.flows.address import section_address
from microprompts.nodes import MicroPrompt
from microprompts.optimizers.candidate import Candidate
from microprompts.optimizers.mutators._moves import MoveMutator, prompts, swap_node
from microprompts.optimizers.mutators.base import Move, MutationContext

__all__ = ["DeleteSentence", "SwapSentences", "join_units", "split_units"]

EDITABLE_KINDS = ("task", "guidelines", "text")
_BOUNDARY = re.compile(r"((?<=[.!?])[ \t]+|\n+)")


def split_units(text: str) -> tuple[list[str], list[str]]:
    """Sentences (or lines) of `text` and the separators between them, so edits keep the layout."""
    parts = _BOUNDARY.split(text.strip())
    units = [p for p in parts[0::2]]
    separators = parts[1::2]
    return units, separators


def join_units(units: list[str], separators: list[str]) -> str:
    """Rejoin units with the original separators (the last ones dropped when units were removed)."""
    out = []
    for i, unit in enumerate(units):
        out.append(unit)
        if i < len(units) - 1:
            out.append(separators[i] if i < len(separators) else " ")
    return "".join(out)


def _editable(mp: MicroPrompt) -> list[tuple[str, int, list[str], list[str]]]:
    """(address, position, units, separators) for every editable section with two or more units."""
    counts: dict[str, int] = {}
    out = []
    for position, section in enumerate(mp.sections):
        index = counts.get(section.kind, 0)
        counts[section.kind] = index + 1
        if section.kind not in EDITABLE_KINDS:
            continue
        units, separators = split_units(section.text)
        if len([u for u in units if u.strip()]) >= 2:
            out.append((section_address(mp.name, section.kind, index), position, units, separators))
    return out


def _with_text(mp: MicroPrompt, position: int, text: str) -> MicroPrompt:
    sections = list(mp.sections)
    sections[position] = sections[position].model_copy(update={"text": text})
    return mp.replace(sections=sections)


class DeleteSentence(MoveMutator):
    """Delete one sentence (or bullet line) from a task, guidelines or notes section."""

    name = "delete_sentence"
    kind = "content"

    def addresses(self, flow: Flow) -> list[str]:
        """Every editable section with two or more sentences."""
        return [a for mp in prompts(flow) for a, *_ in _editable(mp)]

    def moves(self, candidate: Candidate, ctx: MutationContext) -> list[Move]:
        """Each sentence of each editable section, deleted."""
        out = []
        for mp in prompts(candidate.flow):
            for address, position, units, separators in _editable(mp):
                before = mp.sections[position].text
                for i in range(len(units)):
                    kept = units[:i] + units[i + 1 :]
                    seps = separators[:i] + separators[i + 1 :] if i < len(separators) else separators[:-1]
                    text = join_units(kept, seps)
                    out.append(
                        Move(
                            address,
                            before,
                            text,
                            swap_node(candidate.flow, _with_text(mp, position, text)),
                            note=f"deleted: {units[i][:80]}",
                        )
                    )
        return out


class SwapSentences(MoveMutator):
    """Swap two sentences (or bullet lines) within a task, guidelines or notes section."""

    name = "swap_sentences"
    kind = "content"

    def addresses(self, flow: Flow) -> list[str]:
        """Every editable section with two or more sentences."""
        return [a for mp in prompts(flow) for a, *_ in _editable(mp)]

    def moves(self, candidate: Candidate, ctx: MutationContext) -> list[Move]:
        """Each pair of different sentences of each editable section, swapped."""
        out = []
        for mp in prompts(candidate.flow):
            for address, position, units, separators in _editable(mp):
                before = mp.sections[position].text
                for i in range(len(units)):
                    for j in range(i + 1, len(units)):
                        if units[i] == units[j]:
                            continue
                        swapped = list(units)
                        swapped[i], swapped[j] = swapped[j], swapped[i]
                        text = join_units(swapped, separators)
                        node = _with_text(mp, position, text)
                        out.append(
                            Move(
                                address,
                                before,
                                text,
                                swap_node(candidate.flow, node),
                                note=f"swapped sentences {i + 1} and {j + 1}",
                            )
                        )
        return out
