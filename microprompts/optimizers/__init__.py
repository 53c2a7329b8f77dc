"""Optimizers: how a flow improves. Metrics, mutators, search strategies, the budgeted evaluator and `optimize`."""

from microprompts.optimizers.addresses import (
    MutationViolation,
    address_values,
    check_mutation,
    is_frozen,
    touched,
)
from microprompts.optimizers.budget import Budget, BudgetExceeded
from microprompts.optimizers.candidate import Candidate, Mutation
from microprompts.optimizers.journal import ResumeError
from microprompts.optimizers.metrics import (
    Metric,
    MetricError,
    Score,
    as_score,
    exact_match,
    f1,
    jaccard,
    llm_judge,
    normalize,
    resolve_metric,
)
from microprompts.optimizers.mutators import MutationContext, Mutator, default_mutators
from microprompts.optimizers.optimize import optimize
from microprompts.optimizers.result import OptimizeResult
from microprompts.optimizers.search import BeamSearch, Enumerate, RegularizedEvolution, Search
from microprompts.optimizers.space import SearchSpace, one_of, optional

__all__ = [
    "BeamSearch",
    "Budget",
    "BudgetExceeded",
    "Candidate",
    "Enumerate",
    "Metric",
    "MetricError",
    "Mutation",
    "MutationContext",
    "MutationViolation",
    "Mutator",
    "OptimizeResult",
    "RegularizedEvolution",
    "ResumeError",
    "Score",
    "Search",
    "SearchSpace",
    "address_values",
    "as_score",
    "check_mutation",
    "default_mutators",
    "exact_match",
    "f1",
    "is_frozen",
    "jaccard",
    "llm_judge",
    "normalize",
    "one_of",
    "optimize",
    "optional",
    "resolve_metric",
    "touched",
]
