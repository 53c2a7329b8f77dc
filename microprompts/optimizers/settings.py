"""The engine's settings (how it searches and selects) and its proposers (the mutators and the optimizer model they
ask), apart from the engine so that callers build them without importing the search machinery."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel

from microprompts.optimizers.budget import BudgetedCaller
from microprompts.optimizers.mutators.base import Mutator
from microprompts.optimizers.selection import Objective

__all__ = ["EngineSettings", "Proposers"]


@dataclass(frozen=True)
class EngineSettings:
    """How the engine searches: its seed, the screening minibatch and margin, the objective, and what mutators must
    leave alone (`frozen` address patterns) or may choose from (`models` specs). A child is accepted over its parent
    when its mean gain on paired dev rows exceeds `confidence` standard errors; `holdout` of dev (when that is at
    least `min_holdout` rows) is kept out of selection, and the `finalists` best plus the seed are re-scored there.
    When children tie for the last places a screening promotes, up to `tie_rung` of them are compared on a second
    minibatch of other dev rows (0: the tie goes by the operators' standing and the prompts' size alone)."""

    seed: int = 0
    minibatch: int = 8
    margin: float = 0.0
    objective: Objective = Objective()
    frozen: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    confidence: float = 0.8
    holdout: float = 0.25
    min_holdout: int = 5
    finalists: int = 3
    tie_rung: int = 3


@dataclass(frozen=True)
class Proposers:
    """What proposes children: the mutators, and the optimizer model (with its budgeted caller) that the model-based
    ones ask."""

    mutators: Sequence[Mutator] = ()
    model: BaseChatModel | None = None
    caller: BudgetedCaller | None = None
