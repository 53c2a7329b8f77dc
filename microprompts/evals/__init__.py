"""Running a flow over rows and scoring it: one `Metric` protocol, the built-in metrics and the LLM judge."""

from microprompts.evals.evaluate import EvalResult, RowResult, check_rows, evaluate, row_parts
from microprompts.evals.judge import JudgeMetric, llm_judge
from microprompts.evals.metrics import exact_match, f1, jaccard, normalize, resolve_metric
from microprompts.evals.score import Metric, MetricError, Score, as_score

__all__ = [
    "EvalResult",
    "JudgeMetric",
    "Metric",
    "MetricError",
    "RowResult",
    "Score",
    "as_score",
    "check_rows",
    "evaluate",
    "exact_match",
    "f1",
    "jaccard",
    "llm_judge",
    "normalize",
    "resolve_metric",
    "row_parts",
]
