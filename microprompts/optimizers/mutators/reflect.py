"""Reflective proposal in GEPA's manner (Agrawal et al. 2025), on our graph: the failing rows of the parent's scored
run blame one micro-prompt; its inputs and output on those rows, what the later steps wrote, the expected output and
the metric's feedback go to the optimizer model in one typed call (`_meta.REFLECT`), which diagnoses the step and
proposes several new texts for its task or guidelines. Each accepted proposal is one child; the rest wait for the
next time this parent is expanded, so one call feeds several children.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

from microprompts.evals import RowResult
from microprompts.flows import Flow
from microprompts.flows.address import section_address
from microprompts.models import ModelCaller
from microprompts.nodes import MicroPrompt
from microprompts.optimizers.candidate import Candidate
from microprompts.optimizers.mutators._ask import accept_text, clip, fit_blocks, show
from microprompts.optimizers.mutators._blame import blamed_node, render_failure, sample_failures
from microprompts.optimizers.mutators._meta import REFLECT, ask_meta
from microprompts.optimizers.mutators._text import MAX_SECTION_CHARS, TEXT_KINDS, section_text, text_edit
from microprompts.optimizers.mutators.base import Move, MutationContext, Mutator
from microprompts.optimizers.mutators.content import node_terms, step_line

__all__ = ["Reflect"]

FAILURES = 4


class Reflect(Mutator):
    """Blame a node from the parent's failing rows and ask the optimizer model, once, for `proposals` new texts."""

    name = "reflect"
    kind = "content"
    needs_evaluation = True

    def __init__(self, proposals: int = 3, max_chars: int = MAX_SECTION_CHARS) -> None:
        self.proposals, self.max_chars = proposals, max_chars
        # Per run (its optimizer caller) and parent id: proposals made but not handed out yet. Keyed weakly by the
        # run's caller, so a later run, or a resumed one in the same process, starts with none, as the first did.
        self._queued: weakref.WeakKeyDictionary[ModelCaller, dict[str, list[Move]]] = weakref.WeakKeyDictionary()

    def addresses(self, flow: Flow) -> list[str]:
        """The task and guidelines sections of every micro-prompt."""
        return [
            section_address(mp.name, kind)
            for mp in flow.micro_prompts()
            for kind in TEXT_KINDS
            if mp.section(kind) is not None
        ]

    def drafts(self, candidate: Candidate, ctx: MutationContext, n: int) -> Iterator[Move]:
        """The parent's queued proposals; when none is left, one reflection call makes new ones."""
        if ctx.caller is None:
            return
        queued = self._queued.setdefault(ctx.caller, {})
        queue = queued.get(candidate.id)
        if not queue:
            queue = queued[candidate.id] = self.reflect(candidate.flow, ctx)
        while queue:
            yield queue.pop(0)

    def reflect(self, flow: Flow, ctx: MutationContext) -> list[Move]:
        """The accepted proposals of one reflection call on the blamed node (none without failures or a model)."""
        if ctx.caller is None or ctx.optimizer_model is None or ctx.evaluation is None:
            return []
        rows = sample_failures(ctx.evaluation, ctx, FAILURES)
        editable = {a.rpartition(".sections.")[0] for a in self.unfrozen(self.addresses(flow), ctx)}
        node = blamed_node(flow, rows, sorted(editable))
        if node is None:
            return []
        mp = flow.nodes[node]
        assert isinstance(mp, MicroPrompt)
        kinds = [k for k in TEXT_KINDS if section_address(node, k) in self.unfrozen(self.addresses(flow), ctx)]
        current = "\n\n".join(f"{k}:\n<<<\n{section_text(mp, k)}\n>>>" for k in kinds)
        inputs = {"step": step_line(mp), "current": current, "failures": "", "count": str(self.proposals)}
        room = ctx.max_prompt_chars - sum(len(str(m.content)) for m in REFLECT.render(inputs)) - 2 * len(rows)
        inputs["failures"] = "\n\n".join(fit_blocks([_failure(flow, node, i, r) for i, r in enumerate(rows, 1)], room))
        data = ask_meta(ctx, REFLECT, inputs, ctx.rng.randrange(1_000_000))
        return self._moves(flow, mp, kinds, data) if data is not None else []

    def _moves(self, flow: Flow, mp: MicroPrompt, kinds: list[str], data: dict[str, Any]) -> list[Move]:
        moves: list[Move] = []
        seen: list[str] = []
        note = f"reflected on {mp.name}: {clip(str(data.get('diagnosis', '')), 300)}"
        for proposal in data.get("proposals", [])[: self.proposals]:
            kind = proposal.get("section")
            if kind not in kinds:
                continue
            before = section_text(mp, kind)
            after = accept_text(
                {"instruction": proposal.get("text")},
                max_chars=max(self.max_chars, len(before)),
                original=before,
                seen=seen,
                keep=node_terms(mp),
            )
            if after is not None:
                seen.append(after)
                moves.append(text_edit(flow, mp.name, kind, before, after, note=note))
        return moves


def _failure(flow: Flow, node: str, index: int, row: RowResult) -> str:
    """A failing row as the reflection sees it: what the blamed step read, then the whole row (see `render_failure`)."""
    trace = next((t for t in row.traces if t.node == node), None)
    read = f"step {node} read: {show(trace.inputs, 300)}\n" if trace is not None else ""
    return read + render_failure(flow, index, row)
