"""microprompts: agentic workloads as LangGraph flows of micro-prompts, optimized end to end."""

from microprompts._version import VERSION
from microprompts.evals import EvalResult, Metric, MetricError, Score, as_score, evaluate, metrics
from microprompts.flows import ArtifactError, Flow, FlowValidationError
from microprompts.models import CallCache, ModelCaller, Usage, resolve_model
from microprompts.nodes import Example, FunctionNode, MicroPrompt, OutputParseError, Params, Section
from microprompts.optimizers import (
    BeamSearch,
    Budget,
    Enumerate,
    Optimizer,
    OptimizeResult,
    RegularizedEvolution,
    SearchSpace,
    one_of,
    optimize,
    optional,
)

__all__ = [
    "ArtifactError",
    "BeamSearch",
    "Budget",
    "CallCache",
    "Enumerate",
    "EvalResult",
    "Example",
    "Flow",
    "FlowValidationError",
    "FunctionNode",
    "Metric",
    "MetricError",
    "MicroPrompt",
    "ModelCaller",
    "OptimizeResult",
    "Optimizer",
    "OutputParseError",
    "Params",
    "RegularizedEvolution",
    "Score",
    "SearchSpace",
    "Section",
    "Usage",
    "as_score",
    "evaluate",
    "metrics",
    "one_of",
    "optimize",
    "optional",
    "resolve_model",
]
__version__ = VERSION
