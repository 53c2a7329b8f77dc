"""Crossover (no model): merge the best parts of the parent and another member of the pool scored on full dev.

Two kinds of child, both built from parts the two members already have:

- node swap: some nodes from the other member, the rest from the parent (each non-empty proper subset of the
  differing nodes, single nodes and their complements first; one differing node alone when the flows differ elsewhere);
- mix (a node present in both): the sections and parameters of one with the shown examples of the other, both ways.

Only micro-prompts present in both, under the same name, with the same inputs and output schema are crossed, so
the child keeps the parent's graph and validates. A child that touches a frozen address, changes anything but a
node's sections, examples, parameters or reasoning field, or equals either member is never proposed. With an empty
pool (before any child was promoted to full dev) the operator proposes nothing and the engine moves on.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import combinations
from typing import Any

from microprompts.flows import Flow
from microprompts.flows.address import covers, touched
from microprompts.nodes import MicroPrompt
from microprompts.optimizers.candidate import Candidate
from microprompts.optimizers.mutators._moves import prompts
from microprompts.optimizers.mutators.base import Move, MutationContext, Mutator
from microprompts.optimizers.mutators.examples import with_examples

__all__ = ["Crossover"]

MAX_SUBSETS = 16  # node-swap subsets offered per pair of members (single nodes and their complements come first)


def _node_parts(name: str) -> tuple[str, ...]:
    return (f"{name}.sections", f"{name}.examples", f"{name}.params", f"{name}.output.reasoning")


def _shared(parent: Flow, other: Flow) -> list[str]:
    """Micro-prompts of the parent that `other` has too, under the same name, inputs and output schema."""
    out = []
    for mp in prompts(parent):
        theirs = other.nodes.get(mp.name)
        if (
            isinstance(theirs, MicroPrompt)
            and dict(theirs.inputs) == dict(mp.inputs)
            and theirs.output_schema() == mp.output_schema()
        ):
            out.append(mp.name)
    return out


def _subsets(names: list[str]) -> list[tuple[str, ...]]:
    """Non-empty subsets of `names` (all of them only when there is one: the flows differ elsewhere, or the swap
    gives the other member and is dropped): single nodes, their complements, then the others by size."""
    if len(names) < 2:
        return [tuple(names)] if names else []
    firsts = [(n,) for n in names] + [tuple(m for m in names if m != n) for n in names]
    rest = [c for k in range(2, len(names) - 1) for c in combinations(names, k)]
    return list(dict.fromkeys(firsts + rest))[:MAX_SUBSETS]


class Crossover(Mutator):
    """Children that merge the parent with another member of `ctx.pool` (see the module docstring)."""

    name = "crossover"
    kind = "structure"
    needs_evaluation = False

    def addresses(self, flow: Flow) -> list[str]:
        """Every micro-prompt's sections, examples, parameters and reasoning field."""
        return [a for mp in prompts(flow) for a in _node_parts(mp.name)]

    def drafts(self, candidate: Candidate, ctx: MutationContext, n: int) -> Iterable[Move]:
        """Every crossing of the parent with each pool member (in the pool's order, best first) that changes only
        declared, unfrozen parts and equals neither member; shuffled within each member by `ctx.rng`."""
        parent = candidate.flow
        own = parent.content_hash()
        seen = {own}
        for other in ctx.pool:
            if other.content_hash() == own:
                continue
            moves = self._crossings(parent, other)
            ctx.rng.shuffle(moves)
            for move in moves:
                key = move.make().content_hash()
                if key in seen or key == other.content_hash() or not self.allows(move, ctx):
                    continue
                seen.add(key)
                yield move

    def _crossings(self, parent: Flow, other: Flow) -> list[Move]:
        oid = Candidate(other).id
        shared = _shared(parent, other)
        differing = [n for n in shared if touched(parent, parent.replace_node(other.nodes[n]))]
        moves: list[Move | None] = []
        for names in _subsets(differing):
            child = parent
            for name in names:
                child = child.replace_node(other.nodes[name])
            note = f"nodes {', '.join(names)} from {oid}, the rest from the parent"
            moves.append(self._move(parent, child, names[0], {"other": oid, "nodes": list(names)}, note))
        for name in shared:
            mine, theirs = parent.nodes[name], other.nodes[name]
            assert isinstance(mine, MicroPrompt) and isinstance(theirs, MicroPrompt)
            for sections, examples, how in ((mine, theirs, "parent"), (theirs, mine, "other")):
                shown = list(examples.shown_examples())
                if not shown:
                    continue
                node, _ = with_examples(sections, shown)
                child = parent.replace_node(node)
                after = {"other": oid, "node": name, "sections_from": how}
                note = f"{name}: sections of the {how}, examples of the {'other' if how == 'parent' else 'parent'}"
                moves.append(self._move(parent, child, name, after, f"{note} ({oid})"))
        return [m for m in moves if m is not None]

    def _move(self, parent: Flow, child: Flow, node: str, after: dict[str, Any], note: str) -> Move | None:
        diff = sorted(touched(parent, child))
        declared = self.addresses(parent)
        if not diff or not all(any(covers(d, a) for d in declared) for a in diff):
            return None
        return Move(node, Candidate(parent).id, after, lambda: child, touches=diff, note=note)
