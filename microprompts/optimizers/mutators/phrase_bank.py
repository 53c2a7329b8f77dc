"""The phrase bank: rules small task models need, appended without asking an optimizer model."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from microprompts.flows import Flow
from microprompts.flows.address import section_address
from microprompts.nodes import MicroPrompt
from microprompts.optimizers.candidate import Candidate
from microprompts.optimizers.mutators._ask import normalized
from microprompts.optimizers.mutators._text import MAX_SECTION_CHARS, section_text, split_address, text_edit
from microprompts.optimizers.mutators.base import Move, MutationContext, Mutator

__all__ = ["PHRASES", "PhraseBank"]

PHRASES: tuple[str, ...] = (
    "Answer with only the requested JSON fields; add no commentary.",
    "Use only values that appear in the inputs or in the allowed options; never invent new ones.",
    "Copy names and identifiers exactly as they are written in the inputs.",
    "Read every input field carefully before answering.",
    "When unsure, choose the most likely option rather than leaving a field empty.",
    "Follow the task's rules in order, and check the answer against each rule.",
    "Be concise.",
)


class PhraseBank(Mutator):
    """Append one rule from a bank that small task models need (no optimizer model: works when it is weak).

    The rule goes at the end of the guidelines when the node has them, else of the task.
    """

    name = "phrase_bank"
    kind = "content"
    needs_evaluation = False

    def __init__(self, phrases: Sequence[str] = PHRASES, max_chars: int = MAX_SECTION_CHARS) -> None:
        self.phrases = tuple(phrases)
        self.max_chars = max_chars

    def _target(self, mp: MicroPrompt) -> str:
        return "guidelines" if mp.section("guidelines") is not None else "task"

    def addresses(self, flow: Flow) -> list[str]:
        """The one section per micro-prompt that a phrase would be appended to."""
        return [
            section_address(mp.name, self._target(mp))
            for mp in flow.micro_prompts()
            if mp.section(self._target(mp)) is not None
        ]

    def drafts(self, candidate: Candidate, ctx: MutationContext, n: int) -> Iterable[Move]:
        """Each phrase a section does not already hold, shuffled by `ctx.rng`; too long a result is skipped."""
        flow = candidate.flow
        options = []
        for address in self.unfrozen(self.addresses(flow), ctx):
            node, kind = split_address(address)
            mp = flow.nodes[node]
            assert isinstance(mp, MicroPrompt)
            text = section_text(mp, kind)
            options += [(node, kind, p) for p in self.phrases if normalized(p) not in normalized(text)]
        ctx.rng.shuffle(options)
        return self._appends(flow, options)

    def _appends(self, flow: Flow, options: list[tuple[str, str, str]]) -> Iterator[Move]:
        for node, kind, phrase in options:
            mp = flow.nodes[node]
            assert isinstance(mp, MicroPrompt)
            before = section_text(mp, kind)
            joiner = "\n- " if kind == "guidelines" and before.lstrip().startswith("-") else ("\n" if before else "")
            after = (before.rstrip() + joiner + phrase).strip()
            if len(after) <= max(self.max_chars, len(before)):
                yield text_edit(flow, node, kind, before, after, note=f"appended: {phrase}")
