"""Section-structure mutators that need no model: drop, reorder and add sections, reasoning field, data and reply
formats, and itemized totals."""

from __future__ import annotations

from microprompts.flows import Flow
from microprompts.flows.address import section_address
from microprompts.nodes import MicroPrompt, Section
from microprompts.nodes.itemize import itemizable
from microprompts.nodes.sections import REPLY_FORMATS, insert_section
from microprompts.optimizers.candidate import Candidate
from microprompts.optimizers.mutators._moves import MoveMutator, ParamChoice, prompts, swap_node
from microprompts.optimizers.mutators.base import Move, MutationContext

__all__ = [
    "GUIDELINE_PHRASES",
    "AddGuideline",
    "DataFormat",
    "DropInput",
    "DropSection",
    "Itemize",
    "ReorderSections",
    "ReplyFormat",
    "ToggleReasoning",
]

CORE_KINDS = ("task", "inputs", "output_format")
DATA_FORMATS = ("markdown", "xml", "json")

GUIDELINE_PHRASES = (
    "Read every input carefully before answering.",
    "Base your answer only on the information in the inputs.",
    "Follow the output format exactly.",
    "Answer with exactly one of the allowed values.",
    "Do not invent items that are not in the inputs.",
    "If you are unsure, give the most likely answer.",
    "Think step by step before you answer.",
    "Be concise.",
    "Use the examples as a guide to the expected answer.",
    "Check your answer against the task before replying.",
    "Consider every constraint stated in the inputs.",
    "Prefer the simplest answer that satisfies the task.",
)


def _keyed(mp: MicroPrompt) -> list[tuple[str, Section]]:
    """Each section with its address."""
    counts: dict[str, int] = {}
    out = []
    for section in mp.sections:
        index = counts.get(section.kind, 0)
        counts[section.kind] = index + 1
        out.append((section_address(mp.name, section.kind, index), section))
    return out


class DropSection(MoveMutator):
    """Remove one optional section (never task, inputs or output format)."""

    name = "drop_section"
    kind = "structure"

    def addresses(self, flow: Flow) -> list[str]:
        """The order and each optional section of every micro-prompt that has one."""
        out = []
        for mp in prompts(flow):
            keyed = [a for a, s in _keyed(mp) if s.kind not in CORE_KINDS]
            out += [f"{mp.name}.sections", *keyed] if keyed else []
        return out

    def moves(self, candidate: Candidate, ctx: MutationContext) -> list[Move]:
        """Each optional section, dropped."""
        out = []
        for mp in prompts(candidate.flow):
            keyed = _keyed(mp)
            for position, (address, section) in enumerate(keyed):
                if section.kind in CORE_KINDS:
                    continue
                later = [a for a, s in keyed[position:] if s.kind == section.kind]
                node = mp.replace(sections=[s for i, s in enumerate(mp.sections) if i != position])
                out.append(
                    Move(
                        address,
                        section.model_dump(),
                        None,
                        swap_node(candidate.flow, node),
                        touches=[f"{mp.name}.sections", *later],
                    )
                )
        return out


class ReorderSections(MoveMutator):
    """Move one section to another position (sections of one kind keep their relative order)."""

    name = "reorder_sections"
    kind = "structure"

    def addresses(self, flow: Flow) -> list[str]:
        """The section order of every micro-prompt with two kinds of section or more."""
        return [f"{mp.name}.sections" for mp in prompts(flow) if len({s.kind for s in mp.sections}) > 1]

    def moves(self, candidate: Candidate, ctx: MutationContext) -> list[Move]:
        """Each new order made by moving one section."""
        out = []
        for mp in prompts(candidate.flow):
            kinds = [s.kind for s in mp.sections]
            seen: set[tuple[str, ...]] = {tuple(kinds)}
            for i in range(len(kinds)):
                for j in range(len(kinds)):
                    items = list(mp.sections)
                    moved = items.pop(i)
                    items.insert(j, moved)
                    order = tuple(s.kind for s in items)
                    same_kind = [s for s in items if s.kind == moved.kind]
                    original = [s for s in mp.sections if s.kind == moved.kind]
                    if order in seen or same_kind != original:
                        continue
                    seen.add(order)
                    out.append(
                        Move(
                            f"{mp.name}.sections",
                            kinds,
                            list(order),
                            swap_node(candidate.flow, mp.replace(sections=items)),
                        )
                    )
        return out


class AddGuideline(MoveMutator):
    """Add a guideline phrase from a small built-in bank (creating the guidelines section if needed)."""

    name = "add_guideline"
    kind = "structure"

    def __init__(self, phrases: tuple[str, ...] = GUIDELINE_PHRASES) -> None:
        self.phrases = phrases

    def addresses(self, flow: Flow) -> list[str]:
        """The section order and guidelines of every micro-prompt."""
        return [a for mp in prompts(flow) for a in (f"{mp.name}.sections", f"{mp.name}.sections.guidelines")]

    def moves(self, candidate: Candidate, ctx: MutationContext) -> list[Move]:
        """Each bank phrase the guidelines lack, appended (the section added when missing)."""
        out = []
        for mp in prompts(candidate.flow):
            address = f"{mp.name}.sections.guidelines"
            current = mp.section("guidelines")
            for phrase in self.phrases:
                if current is not None and phrase in current.text:
                    continue
                if current is None:
                    section = Section.of("guidelines", f"- {phrase}")
                    node = mp.replace(sections=insert_section(mp.sections, section))
                    touches = [address, f"{mp.name}.sections"]
                    before = None
                else:
                    text = (current.text.rstrip() + "\n" if current.text.strip() else "") + f"- {phrase}"
                    section = current.model_copy(update={"text": text})
                    node = mp.replace(sections=[section if s is current else s for s in mp.sections])
                    touches, before = [address], current.text
                out.append(
                    Move(address, before, section.text, swap_node(candidate.flow, node), touches=touches, note=phrase)
                )
        return out


class ToggleReasoning(MoveMutator):
    """Add or drop the reasoning field in a node's output."""

    name = "toggle_reasoning"
    kind = "structure"

    def addresses(self, flow: Flow) -> list[str]:
        """Each micro-prompt's reasoning field."""
        return [f"{mp.name}.output.reasoning" for mp in prompts(flow)]

    def moves(self, candidate: Candidate, ctx: MutationContext) -> list[Move]:
        """The reasoning field flipped, per micro-prompt."""
        return [
            Move(
                f"{mp.name}.output.reasoning",
                mp.params.reasoning,
                not mp.params.reasoning,
                swap_node(candidate.flow, mp.with_params(reasoning=not mp.params.reasoning)),
            )
            for mp in prompts(candidate.flow)
        ]


class DataFormat(ParamChoice):
    """Render a node's sections and data as markdown, XML or JSON."""

    name = "data_format"
    kind = "structure"
    param = "data_format"
    values = DATA_FORMATS


class ReplyFormat(ParamChoice):
    """Switch how a node answers: a (grammar-constrained) JSON object, or free text as `field: value` lines or
    `[[ ## field ## ]]` blocks, which small models often answer better in (measured on implicatures with Qwen 0.5B:
    dev 0.57 -> 0.73 with lines)."""

    name = "reply_format"
    kind = "structure"
    param = "reply_format"
    values = REPLY_FORMATS


class DropInput(MoveMutator):
    """Stop a node reading one of its inputs (it keeps at least one). A long or distracting input, such as a catalog
    the answer can be read without, misleads a small model: on the intake example with SmolLM2, the product was
    right on 0.07 of dev rows with the catalog shown and 0.58 without. Choices drawn from the dropped input are
    lifted, and its values leave the node's examples."""

    name = "drop_input"
    kind = "structure"

    def addresses(self, flow: Flow) -> list[str]:
        """The inputs, choices and examples of every micro-prompt reading two inputs or more."""
        return [
            a
            for mp in prompts(flow)
            if len(mp.inputs) > 1
            for a in (f"{mp.name}.inputs", f"{mp.name}.params.choices", f"{mp.name}.examples")
        ]

    def moves(self, candidate: Candidate, ctx: MutationContext) -> list[Move]:
        """Each input of each micro-prompt that reads two or more, dropped."""
        out = []
        for mp in prompts(candidate.flow):
            if len(mp.inputs) < 2:
                continue
            for key in mp.inputs:
                node, touches = _without_input(mp, key)
                out.append(
                    Move(
                        f"{mp.name}.inputs",
                        list(mp.inputs),
                        [k for k in mp.inputs if k != key],
                        swap_node(candidate.flow, node),
                        touches=touches,
                        note=f"stopped reading {key}",
                    )
                )
        return out


def _without_input(mp: MicroPrompt, key: str) -> tuple[MicroPrompt, list[str]]:
    """`mp` no longer reading `key` (its choices and examples made to match), and every address that changes."""
    node = mp.replace(inputs={k: v for k, v in mp.inputs.items() if k != key})
    touches = [f"{mp.name}.inputs"]
    choices = {field: source for field, source in mp.params.choices.items() if source != key}
    if choices != mp.params.choices:
        node = node.with_params(choices=choices)
        touches.append(f"{mp.name}.params.choices")
    if any(key in e.inputs for e in mp.examples):
        examples = [
            e.model_copy(update={"inputs": {k: v for k, v in e.inputs.items() if k != key}}) for e in mp.examples
        ]
        node = node.replace(examples=examples)
        touches.append(f"{mp.name}.examples")
    return node, touches


class Itemize(MoveMutator):
    """Answer a whole-number output field as a list of every thing mentioned, each with its quantity and whether it
    counts, which the node adds up in code (program-aided, as PAL); or back to the number. Qwen 0.5B on 60 BBH
    object_counting training rows: 0.27 -> 0.58 (`benchmarks/results/itemize.md`). Only for nodes without examples,
    which show totals."""

    name = "itemize"
    kind = "structure"

    def addresses(self, flow: Flow) -> list[str]:
        """The itemize parameter of each micro-prompt with a whole-number output field."""
        return [f"{mp.name}.params.itemize" for mp in prompts(flow) if itemizable(mp.output)]

    def moves(self, candidate: Candidate, ctx: MutationContext) -> list[Move]:
        """Per micro-prompt: itemized back to the number, or each whole-number field itemized (no examples shown)."""
        out = []
        for mp in prompts(candidate.flow):
            now = mp.params.itemize
            if now:
                fields: list[str | None] = [None]
            elif mp.shown_examples() or mp.params.calibration is not None:
                fields = []
            else:
                fields = list(itemizable(mp.output))
            for field in fields:
                node = mp.with_params(itemize=field)
                out.append(Move(f"{mp.name}.params.itemize", now, field, swap_node(candidate.flow, node)))
        return out
