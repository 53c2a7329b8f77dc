"""Operators that need no model: list every concrete move, drop frozen ones, sample `n` of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from microprompts.flows import Flow
from microprompts.nodes import MicroPrompt
from microprompts.optimizers.candidate import Candidate
from microprompts.optimizers.mutators._focus import per_node, weighted_order
from microprompts.optimizers.mutators.base import Move, MutationContext, Mutator

__all__ = ["MoveMutator", "ParamChoice", "prompts", "swap_node"]


class MoveMutator(Mutator):
    """Subclasses set `name`, `kind` and implement `addresses` and `moves`; the drafts are `n` sampled moves."""

    name: ClassVar[str] = "move"
    needs_evaluation: ClassVar[bool] = False
    validates: ClassVar[bool] = False  # edits of valid parts: the engine's check alone rejects (and journals) one

    def moves(self, candidate: Candidate, ctx: MutationContext) -> list[Move]:
        """Every move this operator can make on `candidate` (deterministic order)."""
        raise NotImplementedError

    def drafts(self, candidate: Candidate, ctx: MutationContext, n: int) -> list[Move]:
        """Up to `n` distinct moves that touch nothing frozen, sampled with `ctx.rng`: uniformly, or, when the context
        has a focus, each node's moves together as likely as its share of the parent's failures."""
        allowed = [m for m in self.moves(candidate, ctx) if self.allows(m, ctx)]
        if not ctx.focus:
            return ctx.rng.sample(allowed, min(n, len(allowed)))
        weight = per_node(ctx.focus, [m.address for m in allowed])
        return weighted_order(allowed, lambda m: weight(m.address), ctx.rng)[:n]

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
        """The parameter's address in every micro-prompt."""
        return [f"{mp.name}.params.{self.param}" for mp in prompts(flow)]

    def moves(self, candidate: Candidate, ctx: MutationContext) -> list[Move]:
        """Each other allowed value of the parameter, per micro-prompt."""
        return [
            Move(
                f"{mp.name}.params.{self.param}",
                getattr(mp.params, self.param),
                value,
                swap_node(candidate.flow, mp.with_params(**{self.param: value})),
            )
            for mp in prompts(candidate.flow)
            for value in self.values
            if value != getattr(mp.params, self.param) and self.allowed(mp, value)
        ]


def prompts(flow: Flow) -> list[MicroPrompt]:
    """The flow's micro-prompt nodes, in order."""
    return flow.micro_prompts()


def swap_node(flow: Flow, node: MicroPrompt) -> Callable[[], Flow]:
    """A thunk that returns `flow` with `node` replacing its namesake."""
    return lambda: flow.replace_node(node)
