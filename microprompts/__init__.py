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

__all__ = [
    "ArtifactError", "CallCache", "EvalResult", "Example", "Flow", "FlowValidationError", "FunctionNode",
    "MetricError", "MicroPrompt", "ModelCaller", "OutputParseError", "Params", "Score", "Section", "Usage",
    "as_score", "evaluate", "resolve_model",
]
__version__ = "0.1.0"
