"""Constrain an output field to the values an input lists (or lift that constraint): a structure move, no model.

Small models invent ids (seats, labels, names) that are not among the options they were given; a per-row enum
(a grammar on llama.cpp, a checked reply elsewhere) removes that failure mode entirely when it applies.
"""

from __future__ import annotations

from typing import Annotated, Any, get_args, get_origin

from microprompts.evals.evaluate import row_parts
from microprompts.flows import Flow
from microprompts.nodes import MicroPrompt, NodeTrace
from microprompts.nodes.schema import allowed_values
from microprompts.optimizers.candidate import Candidate
from microprompts.optimizers.mutators._moves import MoveMutator, prompts, swap_node
from microprompts.optimizers.mutators.base import Move, MutationContext

__all__ = ["Choices", "choice_fields", "list_inputs", "seen_in"]


def _is_str(annotation: Any) -> bool:
    """`str`, or `str` with constraints (`Annotated[str, ...]`, e.g. a pattern)."""
    if get_origin(annotation) is Annotated:
        return _is_str(get_args(annotation)[0])
    return annotation is str


def choice_fields(mp: MicroPrompt) -> list[str]:
    """Output fields that can take a per-row enum: `str` or `list[str]` (constrained strings included)."""
    fields = []
    for name, info in mp.output.model_fields.items():
        annotation = info.annotation
        if _is_str(annotation) or (get_origin(annotation) is list and _is_str(get_args(annotation)[0])):
            fields.append(name)
    return fields


def list_inputs(mp: MicroPrompt, rows: list[dict[str, Any]]) -> list[str]:
    """The node's inputs that hold a list of strings in every sampled row where they appear."""
    keys = []
    for key in mp.inputs:
        seen = [row[key] for row in rows if key in row]
        if seen and all(allowed_values(v) is not None for v in seen):
            keys.append(key)
    return keys


def _strings(value: Any) -> list[str]:
    """The strings a field's value holds: a list's items, or the value itself (none for a missing value)."""
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _traced(mp: MicroPrompt, ctx: MutationContext) -> list[tuple[dict[str, Any], NodeTrace]]:
    """(expected output, this node's trace) on the candidate's last evaluated rows (the first 20)."""
    if ctx.evaluation is None:
        return []
    return [(r.expected, t) for r in ctx.evaluation.rows[:20] for t in r.traces if t.node == mp.name]


def _pairs(mp: MicroPrompt, field: str, key: str, ctx: MutationContext) -> list[tuple[Any, Any]]:
    """(value of `field`, list in `key`) on some rows: the gold value where the row gives one, else what the node
    wrote on the candidate's traced rows; train rows with a gold value when there are no traces."""
    pairs = [
        (expected[field] if field in expected else (trace.output or {}).get(field), trace.inputs[key])
        for expected, trace in _traced(mp, ctx)
        if key in trace.inputs
    ]
    if not pairs:
        for row in list(ctx.train)[:20]:
            inputs, expected, _ = row_parts(row)
            if key in inputs and field in expected:
                pairs.append((expected[field], inputs[key]))
    return pairs


def seen_in(mp: MicroPrompt, field: str, key: str, ctx: MutationContext) -> bool:
    """Whether `field` was ever seen taking a value from `key`'s list (gold values first, else the node's own), or
    there is nothing to look at. A constraint on a field that never does (an expression written from a list of
    plan steps, an answer read out of a list of passages) can only break the node, so it is not worth a call."""
    shown = False
    for value, options in _pairs(mp, field, key, ctx):
        values, allowed = _strings(value), allowed_values(options)
        if values and allowed is not None:
            if all(v in allowed for v in values):
                return True
            shown = True
    return not shown


def _node_rows(mp: MicroPrompt, ctx: MutationContext) -> list[dict[str, Any]]:
    """What this node reads on some rows: from the candidate's traces when it has them, else the train inputs."""
    rows = [trace.inputs for _, trace in _traced(mp, ctx)]
    return rows or [row_parts(row)[0] for row in list(ctx.train)[:20]]


class Choices(MoveMutator):
    """Set `params.choices[field] = input` (values must come from that input's list), or remove such a constraint."""

    name = "choices"
    kind = "structure"

    def addresses(self, flow: Flow) -> list[str]:
        """Each micro-prompt's choices, where an output field could take a per-row enum."""
        return [f"{mp.name}.params.choices" for mp in prompts(flow) if choice_fields(mp)]

    def moves(self, candidate: Candidate, ctx: MutationContext) -> list[Move]:
        """Lift each constraint, or add one from each list input the field has been seen drawing from."""
        out = []
        for mp in prompts(candidate.flow):
            fields = choice_fields(mp)
            if not fields:
                continue
            current = dict(mp.params.choices)
            address = f"{mp.name}.params.choices"
            for field in fields:
                if field in current:
                    lifted = {k: v for k, v in current.items() if k != field}
                    out.append(
                        Move(
                            address,
                            current,
                            lifted,
                            swap_node(candidate.flow, mp.with_params(choices=lifted)),
                            note=f"let {field} take any value",
                        )
                    )
                    continue
                for key in list_inputs(mp, _node_rows(mp, ctx)):
                    if not seen_in(mp, field, key, ctx):
                        continue
                    added = {**current, field: key}
                    out.append(
                        Move(
                            address,
                            current,
                            added,
                            swap_node(candidate.flow, mp.with_params(choices=added)),
                            note=f"{field} must come from {key}",
                        )
                    )
        return out
