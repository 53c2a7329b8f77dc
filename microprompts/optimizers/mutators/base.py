"""The mutator contract: what a mutation operator sees, what it returns, and what it declares it touches."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from langchain_core.language_models import BaseChatModel

from microprompts.evals import EvalResult, Metric
from microprompts.flows import Flow
from microprompts.models import ModelCaller
from microprompts.optimizers.candidate import Candidate, Mutation, MutationKind


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


class Mutator(Protocol):
    """A mutation operator: proposes child flows of one candidate, each with its Mutation record."""

    name: str
    kind: MutationKind

    def addresses(self, flow: Flow) -> list[str]:
        """The addresses this operator could touch in `flow` (before freezing is applied)."""
        ...

    def propose(self, candidate: Candidate, ctx: MutationContext, n: int = 1) -> list[tuple[Flow, Mutation]]:
        """Up to `n` children; each must compile and validate, or it is dropped by the caller."""
        ...
