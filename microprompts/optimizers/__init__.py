"""Optimizers: how a flow improves. For now, the metrics that score a flow's predictions."""

from microprompts.optimizers.metrics import (
    Metric,
    MetricError,
    Score,
    as_score,
    exact_match,
    f1,
    jaccard,
    normalize,
    resolve_metric,
)

__all__ = [
    "Metric",
    "MetricError",
    "Score",
    "as_score",
    "exact_match",
    "f1",
    "jaccard",
    "normalize",
    "resolve_metric",
]
