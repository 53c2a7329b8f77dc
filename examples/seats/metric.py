"""The seed talk's seat loss as a score: Jaccard similarity with the correct seats, minus 0.25 per invented
seat id (not in ``available_seats``) and per seat beyond the top 3; floor 0.

CLI: ``--metric examples/seats/metric.py:seat_metric``.
"""

from __future__ import annotations

from microprompts.evals.metrics import jaccard

seat_metric = jaccard("recommended_seats", valid_from="available_seats", penalty=0.25, k=3)
