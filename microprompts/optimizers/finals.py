"""The end of a search: a held-out slice of dev that no candidate is selected on, and the choice of the winner among
the finalists once they are re-scored there (DESIGN.md: selection overfits a small dev set; the held-out rows are
what tells a steady gain from a lucky one)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from microprompts.optimizers.budget import BudgetTracker
from microprompts.optimizers.candidate import Record
from microprompts.optimizers.evaluator import KeyedRows

__all__ = [
    "finalist_rows",
    "holdout_reserve",
    "holdout_size",
    "rank_finalists",
    "reopen",
    "split_holdout",
]


def holdout_size(dev: int, fraction: float, minimum: int) -> int:
    """How many of `dev` rows to hold out: `fraction` of them, or none when that is fewer than `minimum` rows (a
    re-score on three rows tells nothing, and the rows are worth more to selection)."""
    size = int(dev * fraction)
    return size if size >= max(1, minimum) and dev - size >= size else 0


def split_holdout(dev: KeyedRows, fraction: float, minimum: int, seed: int) -> tuple[KeyedRows, KeyedRows]:
    """(selection rows, held-out rows) of dev, each in dev's order; the held-out ones are a seeded draw, so a resumed
    run holds out the same rows."""
    size = holdout_size(len(dev), fraction, minimum)
    if size == 0:
        return list(dev), []
    picked = set(random.Random(f"{seed}:holdout").sample(range(len(dev)), size))
    return [r for i, r in enumerate(dev) if i not in picked], [r for i, r in enumerate(dev) if i in picked]


def holdout_reserve(ranked: Sequence[Record], seed: Record, finalists: int, rows: int, row_calls: int) -> int:
    """The task-model calls to keep back for re-scoring on `rows` held-out rows (`row_calls` a row) the finalists
    there are now (`ranked` and the `seed`), and room for one more, up to `finalists` and the seed: a small budget is
    not spent on keeping back re-scores of finalists that never were."""
    count = min(finalists + 1, len(ranked) + (seed not in ranked) + 1)
    return count * rows * row_calls


def rank_finalists(finalists: Sequence[Record]) -> list[Record]:
    """Re-scored finalists, best first: by the held-out objective, then the selection objective, then the cheaper
    prompt (fewer prompt tokens per row), then the earlier."""
    order = {id(r): i for i, r in enumerate(finalists)}
    return sorted(
        (r for r in finalists if r.holdout_objective is not None),
        key=lambda r: (
            -(r.holdout_objective or 0.0),
            -(r.objective or 0.0),
            r.prompt_tokens_per_row or 0.0,
            order[id(r)],
        ),
    )


def reopen(tracker: BudgetTracker) -> None:
    """Clear the task role's exhausted mark when it came from refusing work that would have eaten the calls kept back
    for the re-score (no limit is reached): those calls are there to spend now."""
    budget = tracker.budget
    left, spent = tracker.calls_left(), tracker.total.task_tokens + tracker.total.optimizer_tokens
    tokens_left = budget.tokens is None or spent < budget.tokens
    time_left = budget.seconds is None or tracker.seconds() < budget.seconds
    if (left is None or left > 0) and tokens_left and time_left:
        tracker.exhausted.discard("task")


def finalist_rows(finalists: Sequence[Record]) -> list[dict[str, Any]]:
    """What the journal's "final" event shows of each finalist: its id, dev and held-out scores, prompt size."""
    return [
        {"id": r.id, "dev": r.dev, "holdout": r.holdout, "prompt_tokens_per_row": r.prompt_tokens_per_row}
        for r in finalists
    ]
