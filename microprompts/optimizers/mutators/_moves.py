"""A base for operators that need no model: list every concrete move, drop frozen ones, sample `n` of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from microprompts.flows import Flow
from microprompts.nodes import MicroPrompt
from microprompts.optimizers.addresses import is_frozen
from microprompts.optimizers.candidate import Candidate, Mutation, MutationKind
from microprompts.optimizers.mutators.base import MutationContext


@dataclass
class Move:
    """One concrete edit: the address it is about, before/after for the record, and how to make the child."""

    address: str
    before: Any
    after: Any
    make: Callable[[], Flow]
    touches: list[str] = field(default_factory=list)  # every address it changes (defaults to [address])
    note: str = ""


class MoveMutator:
    """Subclasses set `name`, `kind` and implement `addresses` and `moves`; `propose` samples moves."""

    name: ClassVar[str] = "move"
    kind: ClassVar[MutationKind] = "structure"
    needs_evaluation: ClassVar[bool] = False  # the engine runs the parent on train rows first only when True

    def addresses(self, flow: Flow) -> list[str]:
        """The addresses this operator could touch in `flow`."""
        raise NotImplementedError

    def moves(self, candidate: Candidate, ctx: MutationContext) -> list[Move]:
        """Every move this operator can make on `candidate` (deterministic order)."""
        raise NotImplementedError

    def propose(self, candidate: Candidate, ctx: MutationContext, n: int = 1) -> list[tuple[Flow, Mutation]]:
        """Up to `n` distinct children, from moves that touch nothing frozen."""
        allowed = [m for m in self.moves(candidate, ctx)
                   if not any(is_frozen(a, ctx.frozen) for a in (m.touches or [m.address]))]
        picked = ctx.rng.sample(allowed, min(n, len(allowed)))
        out = []
        for move in picked:
            mutation = Mutation(operator=self.name, kind=self.kind, address=move.address, before=move.before,
                                after=move.after, note=move.note)
            out.append((move.make(), mutation))
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ParamChoice(MoveMutator):
    """Set one parameter of a node to another of `values`: subclasses set `param` and `values` (the data format,
    the reply format, max tokens...)."""

    param: ClassVar[str]
    values: tuple[Any, ...] = ()

    def allowed(self, mp: MicroPrompt, value: Any) -> bool:
        """Whether `value` may replace the node's current one (it always differs from it)."""
        return True

    def addresses(self, flow: Flow) -> list[str]:
        return [f"{mp.name}.params.{self.param}" for mp in prompts(flow)]

    def moves(self, candidate: Candidate, ctx: MutationContext) -> list[Move]:
        return [Move(f"{mp.name}.params.{self.param}", getattr(mp.params, self.param), value,
                     swap_node(candidate.flow, mp.with_params(**{self.param: value})))
                for mp in prompts(candidate.flow) for value in self.values
                if value != getattr(mp.params, self.param) and self.allowed(mp, value)]


def prompts(flow: Flow) -> list[MicroPrompt]:
    """The flow's micro-prompt nodes, in order."""
    return flow.micro_prompts()


def swap_node(flow: Flow, node: MicroPrompt) -> Callable[[], Flow]:
    """A thunk that returns `flow` with `node` replacing its namesake."""
    return lambda: flow.replace_node(node)
