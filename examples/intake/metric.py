"""The intake score: the mean of exact matches on product, customer and team, with feedback naming misses.

CLI: ``--metric examples/intake/metric.py:intake_metric``.
"""

from __future__ import annotations

from typing import Any

from microprompts import Score

FIELDS = ("product", "customer", "team")


def intake_metric(example: Any, prediction: dict[str, Any]) -> Score:
    """1/3 for each of product, customer and team that matches the gold answer (case and spaces aside)."""
    output = example.get("output", {}) if isinstance(example, dict) else example.output
    misses = []
    for field in FIELDS:
        want, got = str(output.get(field, "")), str(prediction.get(field) or "")
        if got.strip().lower() != want.strip().lower():
            misses.append(f"{field}: expected {want!r}, got {got!r}")
    return Score(value=(len(FIELDS) - len(misses)) / len(FIELDS), feedback="; ".join(misses))
