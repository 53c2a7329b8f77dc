"""Optimizers: how a flow improves. Mutators, search strategies, the budgeted evaluator and `optimize`."""

from microprompts.flows.address import (
    MutationViolation,
    address_values,
    check_mutation,
    is_frozen,
    touched,
)
from microprompts.optimizers.budget import Budget, BudgetExceeded
from microprompts.optimizers.candidate import Candidate, Mutation
from microprompts.optimizers.journal import ResumeError
from microprompts.optimizers.mutators import MutationContext, Mutator, default_mutators
from microprompts.optimizers.optimize import Optimizer, RunLockedError, optimize
from microprompts.optimizers.result import OptimizeResult
from microprompts.optimizers.search import (
    BeamSearch,
    Enumerate,
    ParetoSearch,
    RegularizedEvolution,
    Search,
    SearchEngine,
)
from microprompts.optimizers.space import SearchSpace, one_of, optional

__all__ = [
    "BeamSearch",
    "Budget",
    "BudgetExceeded",
    "Candidate",
    "Enumerate",
    "Mutation",
    "MutationContext",
    "MutationViolation",
    "Mutator",
    "OptimizeResult",
    "Optimizer",
    "ParetoSearch",
    "RegularizedEvolution",
    "ResumeError",
    "RunLockedError",
    "Search",
    "SearchEngine",
    "SearchSpace",
    "address_values",
    "check_mutation",
    "default_mutators",
    "is_frozen",
    "one_of",
    "optimize",
    "optional",
    "touched",
]
