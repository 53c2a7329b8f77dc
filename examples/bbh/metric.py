"""Exact match on the answer (case and surrounding punctuation ignored).

CLI: ``--metric examples/bbh/metric.py:bbh_metric`` with ``--map target=output.answer`` (see flow.py).
"""

from __future__ import annotations

from microprompts.evals.metrics import exact_match

bbh_metric = exact_match("answer")
