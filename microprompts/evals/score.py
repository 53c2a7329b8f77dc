"""The score a metric gives one prediction, and the check that turns any metric's return into one.

Every metric in the package, the built-ins, the LLM judge and a user's function, meets the one `Metric` protocol.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any, Protocol

from pydantic import BaseModel

__all__ = ["Metric", "MetricError", "Score", "as_score"]


class Score(BaseModel):
    """A metric's verdict on one prediction: ``value`` (higher is better) and textual ``feedback`` on why."""

    value: float
    feedback: str = ""


class Metric(Protocol):
    """A metric: ``metric(example, prediction) -> float | Score`` (or a dict with ``value``), higher is better.
    `example` is the dataset row (a `Row` or a ``{"inputs", "output"}`` dict); `prediction` the flow's outputs."""

    def __call__(self, example: Any, prediction: dict[str, Any], /) -> float | Score | dict[str, Any]:
        """Score one prediction."""
        ...


class MetricError(ValueError):
    """A metric returned something that is not a score, or could not score an example at all."""


def as_score(value: Any) -> Score:
    """Normalize a metric's return (float, int, bool, Score, or dict with ``value`` [+ ``feedback``]) to a
    Score; raise :class:`MetricError` for anything else, NaN and infinities included."""
    if isinstance(value, Score):
        number, feedback = value.value, value.feedback
    elif isinstance(value, Real):  # bool and numpy numbers included
        number, feedback = float(value), ""
    elif isinstance(value, dict) and "value" in value:
        raw, feedback = value["value"], value.get("feedback", "")
        if isinstance(raw, bool) or not isinstance(raw, Real):
            raise MetricError(f"metric returned a dict whose 'value' is a {type(raw).__name__}, not a number")
        if not isinstance(feedback, str):
            raise MetricError(f"metric returned a dict whose 'feedback' is a {type(feedback).__name__}, not a str")
        number = float(raw)
    else:
        raise MetricError(
            f"metric returned a {type(value).__name__} ({_short(value)}); "
            "expected a float, int, bool, Score or dict with 'value'"
        )
    if math.isnan(number) or math.isinf(number):
        raise MetricError(f"metric returned a float that is not finite ({number})")
    return Score(value=number, feedback=feedback)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
