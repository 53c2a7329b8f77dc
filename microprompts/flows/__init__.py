"""How steps connect and run: Flow, validation, artifacts, and evaluation over datasets."""

from microprompts.flows.artifact import ArtifactError, content_hash
from microprompts.flows.evaluate import EvalResult, Metric, RowResult, evaluate
from microprompts.flows.flow import Branch, Flow, RouterError
from microprompts.flows.score import MetricError, Score, as_score
from microprompts.flows.validate import FlowValidationError

__all__ = [
    "ArtifactError", "Branch", "EvalResult", "Flow", "FlowValidationError", "Metric", "MetricError", "RouterError",
    "RowResult", "Score", "as_score", "content_hash", "evaluate",
]
