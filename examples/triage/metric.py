"""The triage score: the mean of exact matches on category, urgency and team, with feedback naming misses.

CLI: ``--metric examples/triage/metric.py:triage_metric``.
"""

from __future__ import annotations

from typing import Any

from microprompts import Score

FIELDS = ("category", "urgency", "team")


def _expected(example: Any) -> dict[str, Any]:
    output = example.get("output", {}) if isinstance(example, dict) else example.output
    return dict(output or {})


def triage_metric(example: Any, prediction: dict[str, Any]) -> Score:
    """1/3 for each of category, urgency and team that matches the gold label (case-insensitive)."""
    expected = _expected(example)
    misses = []
    for field in FIELDS:
        want, got = expected.get(field), prediction.get(field)
        if str(got or "").strip().lower() != str(want).strip().lower():
            misses.append(f"{field}: expected {want!r}, got {got!r}")
    return Score(value=(len(FIELDS) - len(misses)) / len(FIELDS), feedback="; ".join(misses))
