"""Model-based content mutators: rewrite a node's task or guidelines text with the optimizer model.

Operators (DESIGN.md's content row): `paraphrase`, `compress`, `induce` (APE: the instruction inferred from
input/output pairs), `opro` (a new text from the trajectory of scored texts), `textual_gradient`
(APO/ProTeGi/TextGrad: critique the failing rows' end-to-end traces, blame one node, edit that node), and
`phrase_bank` (no model: append a rule that small task models need, for when the optimizer model is weak).

Each child changes exactly one section's text (`<node>.sections.<kind>`), is built only from an accepted reply
(see `_ask`), and is checked to validate and compile. Calls use `sample` drawn from `ctx.rng`, so two
proposals differ, and a rerun with the same seed hits the call cache.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from microprompts.evals.evaluate import row_parts
from microprompts.flows import Flow
from microprompts.flows.address import section_address
from microprompts.nodes import MicroPrompt
from microprompts.optimizers.candidate import Candidate
from microprompts.optimizers.mutators import _prompts as P
from microprompts.optimizers.mutators._ask import ask_text, clip, fit_blocks, normalized, request_overhead, show
from microprompts.optimizers.mutators._blame import CRITIQUE_CHARS, blame
from microprompts.optimizers.mutators._focus import per_node, weighted_order
from microprompts.optimizers.mutators._text import (
    MAX_SECTION_CHARS,
    TEXT_KINDS,
    section_text,
    split_address,
    text_edit,
    with_section_text,
)
from microprompts.optimizers.mutators.base import Move, MutationContext, Mutator
from microprompts.optimizers.mutators.phrase_bank import PhraseBank

__all__ = [
    "Compress",
    "InduceInstruction",
    "OproProposal",
    "Paraphrase",
    "PhraseBank",
    "SectionTextMutator",
    "TextualGradient",
    "blame",
    "content_mutators",
    "with_section_text",
]

MAX_DEMOS = 5
MAX_TRAJECTORY = 8


def node_terms(mp: MicroPrompt) -> list[str]:
    """Words a rewrite of the node's text must not lose: input and output names, and the output's enum labels."""
    terms = [*mp.reads, *mp.writes]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            terms.extend(v for v in node.get("enum", ()) if isinstance(v, str))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(mp.output_schema())
    return list(dict.fromkeys(t for t in terms if t.strip()))


def step_line(mp: MicroPrompt) -> str:
    """One line naming a step, what it reads and what it writes (context for every meta-prompt)."""
    return P.STEP.format(node=mp.name, reads=", ".join(mp.reads) or "nothing", writes=", ".join(mp.writes))


class SectionTextMutator(Mutator):
    """Base of the model-based text operators: pick an unfrozen (node, section) and ask for a new text."""

    name = "section_text"
    kind = "content"
    kinds: tuple[str, ...] = TEXT_KINDS
    temperature = 0.7
    needs_text = True  # only sections that already say something
    needs_evaluation = False  # the engine runs the parent on feedback rows first only for operators that read it
    keep_terms = True  # a rewrite must keep the labels and field names the text mentions (see `node_terms`)

    def __init__(self, max_chars: int = MAX_SECTION_CHARS) -> None:
        self.max_chars = max_chars

    def addresses(self, flow: Flow) -> list[str]:
        """Every section this operator may rewrite."""
        return list(
            dict.fromkeys(  # the first section of a kind: a second one has its own address (`#1`)
                section_address(mp.name, kind)
                for mp in flow.micro_prompts()
                for kind in self.kinds
                if (section := mp.section(kind)) is not None and self._eligible(section.text)
            )
        )

    def _eligible(self, text: str) -> bool:
        return bool(text.strip()) or not self.needs_text

    def targets(self, flow: Flow, ctx: MutationContext) -> list[tuple[str, str]]:
        """(node, kind) pairs that are eligible and not frozen, deduplicated."""
        return list(dict.fromkeys(split_address(a) for a in self.unfrozen(self.addresses(flow), ctx)))

    def drafts(self, candidate: Candidate, ctx: MutationContext, n: int) -> Iterable[Move]:
        """`n` tries, one optimizer call each, on targets drawn with `ctx.rng`; rejected replies give no draft."""
        flow = candidate.flow
        targets = self.targets(flow, ctx) if ctx.caller is not None and ctx.optimizer_model is not None else []
        return self._rewrites(flow, targets, ctx, n)

    def _rewrites(self, flow: Flow, targets: list[tuple[str, str]], ctx: MutationContext, n: int) -> Iterator[Move]:
        tried: dict[str, list[str]] = {}
        for _ in range(n if targets else 0):
            node, kind = _pick(targets, ctx)
            mp = flow.nodes[node]
            assert isinstance(mp, MicroPrompt)
            address = section_address(node, kind)
            before = section_text(mp, kind)
            after = self.rewrite(flow, mp, kind, ctx, tried.setdefault(address, []))
            if after is None:
                continue
            tried[address].append(after)
            yield text_edit(flow, node, kind, before, after)

    def rewrite(self, flow: Flow, mp: MicroPrompt, kind: str, ctx: MutationContext, seen: list[str]) -> str | None:
        """The new text of `mp`'s `kind` section, or None when no acceptable reply came back."""
        raise NotImplementedError

    def _ask(
        self, ctx: MutationContext, body: str, original: str, seen: Sequence[str], limit: int, mp: MicroPrompt
    ) -> str | None:
        keep = node_terms(mp) if self.keep_terms else ()
        return ask_text(
            ctx,
            body,
            max_chars=limit,
            original=original,
            seen=seen,
            temperature=self.temperature,
            sample=ctx.rng.randrange(1_000_000),
            keep=keep,
        )


class Paraphrase(SectionTextMutator):
    """Say the same instruction in other words: small models are sensitive to wording (SAMMO, GrIPS)."""

    name = "paraphrase"

    def rewrite(self, flow: Flow, mp: MicroPrompt, kind: str, ctx: MutationContext, seen: list[str]) -> str | None:
        """The section's text in other words, at most 1.5 times as long."""
        text = section_text(mp, kind)
        limit = min(max(int(len(text) * 1.5), 200), max(self.max_chars, len(text)))
        body = P.PARAPHRASE.format(step=step_line(mp), section=kind, text=text)
        return self._ask(ctx, body, text, seen, limit, mp)


class Compress(SectionTextMutator):
    """Shorten an instruction to at most 80% of its length: fewer tokens per row, often no loss (SAMMO)."""

    name = "compress"
    temperature = 0.3
    min_chars = 60  # shorter texts have nothing to drop
    ratio = 0.8

    def _eligible(self, text: str) -> bool:
        return len(text.strip()) >= self.min_chars

    def rewrite(self, flow: Flow, mp: MicroPrompt, kind: str, ctx: MutationContext, seen: list[str]) -> str | None:
        """The section's text shortened to at most `ratio` of its length."""
        text = section_text(mp, kind)
        limit = int(len(text) * self.ratio)
        body = P.COMPRESS.format(step=step_line(mp), section=kind, text=text, length=len(text), limit=limit)
        return self._ask(ctx, body, text, seen, limit, mp)


class InduceInstruction(SectionTextMutator):
    """APE: infer the task from input/output pairs the node should map (Zhou et al. 2023).

    Pairs come from the node's own traces on rows the flow got right; for a node that reads only flow inputs
    or writes an expected field, also from training rows (inputs it reads, expected fields it writes).
    """

    name = "induce"
    kinds = ("task",)
    needs_text = False
    keep_terms = False  # a new instruction, not a rewrite of the old one
    needs_evaluation = True  # pairs for inner nodes come from the traces of rows the flow got right

    def demos(self, flow: Flow, mp: MicroPrompt, ctx: MutationContext) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Input/output pairs for `mp`, shuffled by `ctx.rng`, at most MAX_DEMOS."""
        pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
        if ctx.evaluation is not None:
            for row in ctx.evaluation.rows:
                if row.error is None and row.score >= 1.0:
                    trace = next((t for t in row.traces if t.node == mp.name and t.output and not t.error), None)
                    if trace is not None:
                        pairs.append((trace.inputs, trace.output or {}))
        for row in ctx.train:
            inputs, expected, _ = row_parts(row)
            if all(k in inputs for k in mp.reads):
                output = {k: expected[k] for k in mp.writes if k in expected}
                if output and len(output) == len(mp.writes):
                    pairs.append(({k: inputs[k] for k in mp.reads}, output))
        ctx.rng.shuffle(pairs)
        return pairs[:MAX_DEMOS]

    def targets(self, flow: Flow, ctx: MutationContext) -> list[tuple[str, str]]:
        """Task sections of nodes that have input/output pairs to learn from."""
        return [(node, kind) for node, kind in super().targets(flow, ctx) if self.demos(flow, flow.nodes[node], ctx)]  # type: ignore[arg-type]

    def rewrite(self, flow: Flow, mp: MicroPrompt, kind: str, ctx: MutationContext, seen: list[str]) -> str | None:
        """A task inferred from the node's input/output pairs."""
        pairs = self.demos(flow, mp, ctx)
        if not pairs:
            return None
        text = section_text(mp, kind)
        shown = clip(text, 600)
        fixed = len(P.INDUCE.format(step=step_line(mp), examples="", text=shown)) + request_overhead()
        blocks = [f"Input: {show(i, 400)}\nOutput: {show(o, 300)}" for i, o in pairs]
        blocks = fit_blocks(blocks, ctx.max_prompt_chars - fixed - 2 * len(blocks))
        body = P.INDUCE.format(step=step_line(mp), examples="\n\n".join(blocks), text=shown)
        return self._ask(ctx, body, text, seen, self.max_chars, mp)


class OproProposal(SectionTextMutator):
    """OPRO: show scored versions of a text, worst to best, and ask for a better one (Yang et al. 2024).

    The trajectory is `ctx.history` at the section's address plus the current text at the candidate's score.
    """

    name = "opro"
    needs_text = False
    keep_terms = False
    needs_evaluation = True  # the current text's score joins the trajectory
    temperature = 1.0

    def trajectory(self, mp: MicroPrompt, kind: str, ctx: MutationContext) -> list[tuple[str, float]]:
        """Distinct (text, best score) pairs for the section, ascending by score, at most MAX_TRAJECTORY."""
        address = section_address(mp.name, kind)
        points = [(text, score) for a, text, score in ctx.history if a == address and text.strip()]
        current = section_text(mp, kind)
        if ctx.evaluation is not None and current.strip():
            points.append((current, ctx.evaluation.score))
        best: dict[str, tuple[str, float]] = {}
        for text, score in points:
            key = normalized(text)
            if key not in best or score > best[key][1]:
                best[key] = (text, score)
        return sorted(best.values(), key=lambda p: p[1])[-MAX_TRAJECTORY:]

    def targets(self, flow: Flow, ctx: MutationContext) -> list[tuple[str, str]]:
        """Sections with a trajectory; those with two or more points when any has."""
        scored = []
        for node, kind in super().targets(flow, ctx):
            mp = flow.nodes[node]
            assert isinstance(mp, MicroPrompt)
            scored.append(((node, kind), len(self.trajectory(mp, kind, ctx))))
        rich = [t for t, k in scored if k >= 2]
        return rich or [t for t, k in scored if k >= 1]

    def rewrite(self, flow: Flow, mp: MicroPrompt, kind: str, ctx: MutationContext, seen: list[str]) -> str | None:
        """A better text from the scored trajectory (dropping rows, then the worst texts, to fit)."""
        points = self.trajectory(mp, kind, ctx)
        train = list(ctx.train)
        rows = [row_parts(r) for r in ctx.rng.sample(train, min(2, len(train)))]
        examples = (
            P.OPRO_EXAMPLES.format(rows="\n".join(f"Input: {show(i, 200)}\nOutput: {show(o, 120)}" for i, o, _ in rows))
            if rows
            else ""
        )
        while points:
            shown = "\n".join(f"text:\n<<<\n{clip(t, 500)}\n>>>\nscore: {s:.3f}" for t, s in points)
            body = P.OPRO.format(step=step_line(mp), section=kind, trajectory=shown, examples=examples)
            if len(body) + request_overhead() <= ctx.max_prompt_chars:
                return self._ask(ctx, body, section_text(mp, kind), [t for t, _ in points] + seen, self.max_chars, mp)
            if examples:
                examples = ""
            else:
                points = points[1:]  # drop the worst first: the best texts matter most
        return None


class TextualGradient(SectionTextMutator):
    """APO/ProTeGi/TextGrad: critique the failing end-to-end traces, blame a node, edit its task or guidelines.

    One call for the critique (see `blame`), then one call per child; children edit the same blamed node.
    """

    name = "textual_gradient"
    needs_evaluation = True

    def drafts(self, candidate: Candidate, ctx: MutationContext, n: int) -> Iterable[Move]:
        """Up to `n` edits of the blamed node; none without an evaluation that has failures."""
        flow = candidate.flow
        if ctx.caller is None or ctx.optimizer_model is None or ctx.evaluation is None:
            return []
        if not ctx.evaluation.failures():
            return []
        targets = self.targets(flow, ctx)
        editable = sorted({node for node, _ in targets})
        if not editable:
            return []
        node, critique = blame(flow, ctx.evaluation, ctx, nodes=editable)
        kinds = [k for t_node, k in targets if t_node == node]
        return self._edits(flow, node, kinds, critique, ctx, n)

    def _edits(
        self, flow: Flow, node: str, kinds: list[str], critique: str, ctx: MutationContext, n: int
    ) -> Iterator[Move]:
        mp = flow.nodes[node]
        assert isinstance(mp, MicroPrompt)
        seen: list[str] = []
        for i in range(n):
            kind = kinds[i % len(kinds)]
            before = section_text(mp, kind)
            body = P.EDIT.format(step=step_line(mp), critique=clip(critique, CRITIQUE_CHARS), section=kind, text=before)
            after = self._ask(ctx, body, before, seen, max(self.max_chars, len(before)), mp)
            if after is None:
                continue
            seen.append(after)
            yield text_edit(flow, node, kind, before, after, note=f"blamed {node}: {clip(critique, 300)}")


def content_mutators(optimizer_model_available: bool = True) -> list[Mutator]:
    """The content operators with default settings: the model-based ones when an optimizer model is available,
    and the model-free phrase bank always."""
    model_based: list[Mutator] = [Paraphrase(), Compress(), InduceInstruction(), OproProposal(), TextualGradient()]
    return [*(model_based if optimizer_model_available else []), PhraseBank()]


def _pick(targets: list[tuple[str, str]], ctx: MutationContext) -> tuple[str, str]:
    """A (node, kind) target: uniformly, or each node as likely as its share of the parent's failures."""
    if not ctx.focus:
        return ctx.rng.choice(targets)
    weight = per_node(ctx.focus, [node for node, _ in targets])
    return weighted_order(targets, lambda t: weight(t[0]), ctx.rng)[0]
