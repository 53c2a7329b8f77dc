"""The mutator contract and its one base: what an operator sees, the drafts it makes, and the shared steps that
turn drafts into checked, recorded children.

A `Mutator` subclass says what it could touch (`addresses`) and how it drafts edits (`drafts`); `propose` in the
base builds each draft's child, checks it once, records its `Mutation`, and stops at `n` children.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from langchain_core.language_models import BaseChatModel

from microprompts.evals import EvalResult, Metric
from microprompts.flows import Flow
from microprompts.flows.address import is_frozen
from microprompts.models import ModelCaller
from microprompts.nodes import Runtime
from microprompts.optimizers.candidate import Candidate, Mutation, MutationKind
from microprompts.optimizers.mutators._shared import checked

__all__ = ["Move", "MutationContext", "Mutator"]


@dataclass
class MutationContext:
    """Everything an operator may use: training rows, the candidate's last evaluation, the optimizer model."""

    train: Sequence[Any]
    metric: Metric
    rng: random.Random
    evaluation: EvalResult | None = None  # the candidate's latest scored run (failures, traces, feedback)
    optimizer_model: BaseChatModel | None = None
    caller: ModelCaller | None = None  # use caller.complete(optimizer_model, ...) so calls are cached and metered
    history: list[tuple[str, str, float]] = field(default_factory=list)  # (address, text, score) seen so far: OPRO
    models: Sequence[str] = ()  # model specs a parameter mutator may choose from per node
    frozen: Sequence[str] = ()  # address patterns (fnmatch) that must not change
    max_prompt_chars: int = 6000  # bound on what is sent to the optimizer model
    focus: Mapping[str, float] = field(default_factory=dict)  # node -> share of the parent's failures (even: empty)
    pool: Sequence[Flow] = ()  # the best few full-dev flows other than the parent, best first (crossover's mates)
    runtime: Runtime | None = None  # the task model and its budgeted caller, for an operator that asks the task model


@dataclass
class Move:
    """One drafted edit: the address it is about, before/after for the record, and how to make the child."""

    address: str
    before: Any
    after: Any
    make: Callable[[], Flow]
    touches: list[str] = field(default_factory=list)  # every address it changes (defaults to [address])
    note: str = ""


class Mutator:
    """A mutation operator: drafts edits of one candidate; the base builds, checks and records up to `n` children.

    Subclasses set `name`, `kind` (and `needs_evaluation` when they read the parent's scored run) and implement
    `addresses` and `drafts`.
    """

    name: ClassVar[str] = "mutator"
    kind: ClassVar[MutationKind] = "structure"
    needs_evaluation: ClassVar[bool] = True  # the engine runs the parent on feedback rows first only when True
    validates: ClassVar[bool] = True  # check each child here (validate, compile, serialize) and drop failures

    def addresses(self, flow: Flow) -> list[str]:
        """The addresses this operator could touch in `flow` (before freezing is applied)."""
        raise NotImplementedError

    def drafts(self, candidate: Candidate, ctx: MutationContext, n: int) -> Iterable[Move]:
        """The edits to try, in order: picked with `ctx.rng`, none touching a frozen address (may be lazy)."""
        raise NotImplementedError

    def propose(self, candidate: Candidate, ctx: MutationContext, n: int = 1) -> list[tuple[Flow, Mutation]]:
        """Up to `n` children with their records: drafts are built in order until `n` pass the check."""
        out: list[tuple[Flow, Mutation]] = []
        drafts = iter(self.drafts(candidate, ctx, n))
        while len(out) < n:
            move = next(drafts, None)
            if move is None:
                break
            child = move.make()
            if self.validates and checked(child) is None:
                continue
            out.append((child, self.record(move)))
        return out

    def record(self, move: Move) -> Mutation:
        """The journal's record of a drafted edit."""
        return Mutation(
            operator=self.name,
            kind=self.kind,
            address=move.address,
            before=move.before,
            after=move.after,
            note=move.note,
        )

    @staticmethod
    def unfrozen(addresses: Iterable[str], ctx: MutationContext) -> list[str]:
        """The addresses no frozen pattern of `ctx` covers, in order."""
        return [a for a in addresses if not is_frozen(a, ctx.frozen)]

    @staticmethod
    def allows(move: Move, ctx: MutationContext) -> bool:
        """True when the move touches nothing frozen."""
        return not any(is_frozen(a, ctx.frozen) for a in (move.touches or [move.address]))
