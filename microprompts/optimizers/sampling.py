"""Which rows a step of the search runs on: screening minibatches of dev (in dev's label proportions when its expected
outputs are a few labels) and feedback rows of train, drawn from the search's one seeded RNG so that a replay draws
the same ones (DESIGN.md: "Stratified screening minibatches")."""

from __future__ import annotations

import json
import random
from collections.abc import Collection
from dataclasses import dataclass, field

from microprompts.data import spread_by
from microprompts.evals.evaluate import row_parts
from microprompts.optimizers.evaluator import KeyedRows

__all__ = ["EngineRows", "RowSampler"]


@dataclass(frozen=True)
class EngineRows:
    """The rows a search uses, keyed: `dev` selects candidates, `train` feeds the mutators (examples, feedback)."""

    dev: KeyedRows
    train: KeyedRows = field(default_factory=list)


class RowSampler:
    """Draws screening minibatches of `minibatch` dev rows and feedback rows of train from `rng`."""

    def __init__(self, rows: EngineRows, minibatch: int, rng: random.Random) -> None:
        self.rows, self.size, self.rng = rows, minibatch, rng
        self.labels = _few_labels(rows.dev, minibatch)

    def minibatch(self, exclude: Collection[str] = ()) -> KeyedRows:
        """A fresh seeded minibatch of dev rows (all of dev when the minibatch is not smaller), from the rows whose
        keys are not in `exclude` (a second rung of screening: other rows than the first). When dev's expected
        outputs are a few labels, it holds them in dev's proportions: a random 8 of a 60/40 yes/no dev set of 30 holds
        7 or 8 of one label about one draw in 14, and a child answering that label everywhere then screens near
        perfect."""
        dev, size = self.rows.dev, self.size
        free = [i for i, (key, _) in enumerate(dev) if key not in exclude]
        if size <= 0 or size >= len(free):
            return [dev[i] for i in free]
        if self.labels is None:
            picked = sorted(self.rng.sample(free, size))
        else:
            picked = sorted(spread_by(free, self.labels.__getitem__, self.rng)[:size])
        return [dev[i] for i in picked]

    def feedback(self) -> KeyedRows:
        """A seeded sample of train rows (a minibatch's size, at least one) that a parent runs on before the
        operators that read its scored run (failures, traces) propose."""
        train = self.rows.train
        k = min(len(train), max(1, self.size))
        return [train[i] for i in sorted(self.rng.sample(range(len(train)), k))]


def _few_labels(rows: KeyedRows, minibatch: int) -> list[str] | None:
    """Each row's expected output as a label, when dev holds 2 to `minibatch // 2` distinct ones (a class label,
    so a minibatch can hold about two rows of each); None otherwise (free text, lists, many numbers, none)."""
    labels = [json.dumps(row_parts(row)[1], sort_keys=True, default=str) for _, row in rows]
    return labels if 1 < len(set(labels)) <= minibatch // 2 else None
