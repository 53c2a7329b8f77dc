"""Few-shot example mutators that need no model: how many to show, which ones (fixed, or the nearest to each row),
and ones bootstrapped from traces."""

from __future__ import annotations

import json
from typing import Any

from microprompts.evals.evaluate import row_parts
from microprompts.flows import Flow
from microprompts.nodes import Example, MicroPrompt, Section
from microprompts.nodes.nearest import NEAREST_DEFAULT
from microprompts.nodes.sections import insert_section
from microprompts.optimizers.candidate import Candidate
from microprompts.optimizers.mutators._moves import MoveMutator, prompts, swap_node
from microprompts.optimizers.mutators.base import Move, MutationContext

__all__ = [
    "BootstrapExamples",
    "ChooseExamples",
    "ExampleCount",
    "NearestExamples",
    "labelled_examples",
    "nearest_count",
    "with_examples",
]

COUNTS = (0, 1, 2, 3, 5, 8)
DRAWS = 4  # distinct random choices offered per node
NEAREST_POOL = 32  # labelled rows a node keeps to choose each row's nearest examples from (the artifact holds them)
NEAREST_COUNTS = (8, 5, NEAREST_DEFAULT)  # examples per row the switch shows: the most whose size fits EXAMPLE_CHARS
EXAMPLE_CHARS = 6000  # about 1,500 tokens of examples per row: room for the row and the reply in a 4,096-token context


def _ensure_section(mp: MicroPrompt) -> tuple[MicroPrompt, list[str]]:
    """The node with an examples section (added when missing) and the addresses that adds."""
    if mp.section("examples") is not None:
        return mp, []
    return mp.replace(sections=insert_section(mp.sections, Section.of("examples"))), [
        f"{mp.name}.sections",
        f"{mp.name}.sections.examples",
    ]


def with_examples(mp: MicroPrompt, examples: list[Example]) -> tuple[MicroPrompt, list[str]]:
    """The node showing exactly `examples`, and every address that changes."""
    node, touches = _ensure_section(mp)
    node = node.replace(examples=examples)
    touches.append(f"{mp.name}.examples")
    if node.params.n_examples is not None:
        node = node.with_params(n_examples=None)
        touches.append(f"{mp.name}.params.n_examples")
    return node, touches


def _key(example: Example) -> str:
    return json.dumps(example.model_dump(mode="json"), sort_keys=True)


def _dump(examples: tuple[Example, ...] | list[Example]) -> list[dict[str, Any]]:
    return [e.model_dump(mode="json") for e in examples]


def _addresses(flow: Flow) -> list[str]:
    return [
        a
        for mp in prompts(flow)
        for a in (
            f"{mp.name}.examples",
            f"{mp.name}.params.n_examples",
            f"{mp.name}.params.nearest_examples",
            f"{mp.name}.sections",
            f"{mp.name}.sections.examples",
        )
    ]


def _draws(mp: MicroPrompt, pool: list[Example], ctx: MutationContext, flow: Flow, note: str) -> list[Move]:
    """Up to DRAWS moves, each showing a different random choice of k examples from `pool`."""
    if not pool:
        return []
    current = [_key(e) for e in mp.shown_examples()]
    k = min(len(pool), len(current) or 3)
    seen = {tuple(current)}
    out = []
    for _ in range(DRAWS * 2):
        chosen = ctx.rng.sample(pool, k)
        key = tuple(_key(e) for e in chosen)
        if key in seen:
            continue
        seen.add(key)
        node, touches = with_examples(mp, chosen)
        if node.params.nearest_examples:  # a fixed draw replaces the per-row choice
            node = node.with_params(nearest_examples=False)
            touches.append(f"{mp.name}.params.nearest_examples")
        out.append(
            Move(
                f"{mp.name}.examples",
                _dump(mp.examples),
                _dump(chosen),
                swap_node(flow, node),
                touches=touches,
                note=note,
            )
        )
        if len(out) >= DRAWS:
            break
    return out


class ExampleCount(MoveMutator):
    """Show more or fewer of a node's examples (`params.n_examples`)."""

    name = "example_count"
    kind = "structure"

    def addresses(self, flow: Flow) -> list[str]:
        """The example count and examples section of every micro-prompt with examples."""
        return [
            a
            for mp in prompts(flow)
            if mp.examples
            for a in (f"{mp.name}.params.n_examples", f"{mp.name}.sections", f"{mp.name}.sections.examples")
        ]

    def moves(self, candidate: Candidate, ctx: MutationContext) -> list[Move]:
        """Each other count up to the node's number of examples."""
        out = []
        for mp in prompts(candidate.flow):
            total = len(mp.examples)
            if not total or mp.params.itemize:  # an itemized node shows no examples (they show totals)
                continue
            shown = len(mp.shown_examples())
            for count in sorted({c for c in COUNTS if c <= total} | {total}):
                if count == shown:
                    continue
                node = mp.with_params(n_examples=count)
                touches = [f"{mp.name}.params.n_examples"]
                if count:
                    node, added = _ensure_section(node)
                    touches += added
                out.append(
                    Move(
                        f"{mp.name}.params.n_examples",
                        mp.params.n_examples,
                        count,
                        swap_node(candidate.flow, node),
                        touches=touches,
                    )
                )
        return out


def labelled_examples(mp: MicroPrompt, rows: Any) -> list[Example]:
    """Training rows as examples of `mp`: only when the rows hold every input it reads and every field it writes."""
    out, seen = [], set()
    for row in rows:
        inputs, expected, _ = row_parts(row)
        if not all(k in inputs for k in mp.inputs) or not all(k in expected for k in mp.writes):
            continue
        example = Example(inputs={k: inputs[k] for k in mp.inputs}, output={k: expected[k] for k in mp.writes})
        if _key(example) not in seen:
            seen.add(_key(example))
            out.append(example)
    return out


def _showing(flow: Flow) -> list[MicroPrompt]:
    """The micro-prompts that may show examples: not itemized ones, whose model replies with a list that examples of
    totals do not show."""
    return [mp for mp in prompts(flow) if not mp.params.itemize]


class _ExampleChoice(MoveMutator):
    """The operators that set which examples a node shows: they may touch its examples, their count, the per-row
    choice and the examples section."""

    kind = "structure"

    def addresses(self, flow: Flow) -> list[str]:
        """The examples, their count, per-row choice and section of every micro-prompt."""
        return _addresses(flow)


class ChooseExamples(_ExampleChoice):
    """Show a different random choice of labelled training rows as a node's examples (nodes the data labels)."""

    name = "choose_examples"

    def moves(self, candidate: Candidate, ctx: MutationContext) -> list[Move]:
        """Random draws of the labelled training rows, per micro-prompt."""
        out = []
        for mp in _showing(candidate.flow):
            pool = labelled_examples(mp, ctx.train)
            out += _draws(mp, pool, ctx, candidate.flow, "labelled training rows")
        return out


def nearest_count(pool: list[Example]) -> int:
    """How many nearest examples a row is shown: the most of NEAREST_COUNTS whose mean size fits EXAMPLE_CHARS. On seat
    rows with Qwen 0.5B (`benchmarks/results/nearest_count.md`) 3, 5 and 8 scored 0.50, 0.53 and 0.50 from one pool of
    train rows and 0.43, 0.49 and 0.53 from another: more than 3 helps, and costs prompt tokens on every row."""
    size = sum(len(_key(e)) for e in pool) / max(1, len(pool))
    return next((k for k in NEAREST_COUNTS if k * size <= EXAMPLE_CHARS), NEAREST_COUNTS[-1])


class NearestExamples(_ExampleChoice):
    """Show each row the labelled training rows whose inputs are most like its own (KATE's per-row choice, by string
    similarity): the node keeps up to NEAREST_POOL of them and shows as many as fit (`nearest_count`), never fewer
    than it showed before."""

    name = "nearest_examples"

    def moves(self, candidate: Candidate, ctx: MutationContext) -> list[Move]:
        """Per micro-prompt not choosing per row yet, whose labelled rows outnumber what it shows: the switch."""
        out = []
        for mp in _showing(candidate.flow):
            pool = labelled_examples(mp, ctx.train)[:NEAREST_POOL]
            shown = len(mp.shown_examples())
            if mp.params.nearest_examples or len(pool) <= max(shown, NEAREST_DEFAULT):
                continue
            shown = min(len(pool) - 1, max(shown, nearest_count(pool)))
            node, touches = with_examples(mp, pool)
            node = node.with_params(n_examples=shown, nearest_examples=True)
            touches += [f"{mp.name}.params.n_examples", f"{mp.name}.params.nearest_examples"]
            before = {"examples": len(mp.examples), "n_examples": mp.params.n_examples, "nearest": False}
            after = {"examples": len(pool), "n_examples": shown, "nearest": True}
            note = f"the {shown} of {len(pool)} labelled training rows nearest each row's inputs"
            out.append(
                Move(
                    f"{mp.name}.params.nearest_examples", before, after, swap_node(candidate.flow, node), touches, note
                )
            )
        return out


class BootstrapExamples(_ExampleChoice):
    """Use a node's own inputs and outputs on training rows the whole flow got right (score 1) as its examples."""

    name = "bootstrap_examples"
    needs_evaluation = True

    def moves(self, candidate: Candidate, ctx: MutationContext) -> list[Move]:
        """Random draws of each node's traces on fully right rows; none without an evaluation."""
        if ctx.evaluation is None:
            return []
        good = [r for r in ctx.evaluation.rows if r.error is None and r.score >= 1.0]
        out = []
        for mp in _showing(candidate.flow):
            pool, seen = [], set()
            for row in good:
                for trace in row.traces:
                    if trace.node != mp.name or trace.output is None or trace.error:
                        continue
                    example = Example(inputs=dict(trace.inputs), output=dict(trace.output))
                    if _key(example) not in seen:
                        seen.add(_key(example))
                        pool.append(example)
            out += _draws(mp, pool, ctx, candidate.flow, "bootstrapped from successful traces")
        return out
