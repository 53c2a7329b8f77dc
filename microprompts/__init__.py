"""microprompts: agentic workloads as LangGraph flows of micro-prompts, optimized end to end."""

from microprompts.flows import (
    ArtifactError,
    EvalResult,
    Flow,
    FlowValidationError,
    MetricError,
    Score,
    as_score,
    evaluate,
)
from microprompts.models import CallCache, ModelCaller, Usage, resolve_model
from microprompts.nodes import Example, FunctionNode, MicroPrompt, OutputParseError, Params, Section
from microprompts.optimizers import (
    BeamSearch,
    Budget,
    Enumerate,
    OptimizeResult,
    RegularizedEvolution,
    SearchSpace,
    metrics,
    one_of,
    optimize,
    optional,
)

__all__ = [
    "ArtifactError", "BeamSearch", "Budget", "CallCache", "Enumerate", "EvalResult", "Example", "Flow",
    "FlowValidationError", "FunctionNode", "MetricError", "MicroPrompt", "ModelCaller", "OptimizeResult",
    "OutputParseError", "Params", "RegularizedEvolution", "Score", "SearchSpace", "Section", "Usage", "as_score",
    "evaluate", "metrics", "one_of", "optimize", "optional", "resolve_model",
]
__version__ = "0.1.0"
