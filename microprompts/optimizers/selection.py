"""Selection helpers: the objective, a UCB1 bandit over operators, and the Pareto archive over score and cost."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Objective", "OperatorBandit", "pareto_front"]


@dataclass(frozen=True)
class Objective:
    """What selection maximizes: the score, minus `cost_weight` times tokens per row."""

    cost_weight: float = 0.0

    def __call__(self, score: float, tokens_per_row: float) -> float:
        return score - self.cost_weight * tokens_per_row


@dataclass
class OperatorBandit:
    """UCB1 over operators, rewarded 1 when a child beat its parent on the same rows, else 0.

    Untried operators go first (in a seeded random order); ties break by that order, so choices are deterministic.
    """

    rng: random.Random
    exploration: float = 1.0
    pulls: dict[str, int] = field(default_factory=dict)
    wins: dict[str, float] = field(default_factory=dict)

    def choose(self, names: Sequence[str]) -> str:
        """The operator to try next among `names`."""
        if not names:
            raise ValueError("no operator to choose from")
        untried = [n for n in names if not self.pulls.get(n)]
        if untried:
            return untried[self.rng.randrange(len(untried))]
        total = sum(self.pulls.get(n, 0) for n in names)
        order = list(names)
        self.rng.shuffle(order)

        def ucb(name: str) -> float:
            n = self.pulls[name]
            return self.wins.get(name, 0.0) / n + self.exploration * math.sqrt(2 * math.log(total) / n)

        return max(order, key=ucb)

    def record(self, name: str, reward: float) -> None:
        """Add one outcome for `name`."""
        self.pulls[name] = self.pulls.get(name, 0) + 1
        self.wins[name] = self.wins.get(name, 0.0) + reward

    def stats(self) -> dict[str, dict[str, float]]:
        """Pulls and mean reward per operator, for the report."""
        return {n: {"pulls": p, "mean_reward": round(self.wins.get(n, 0.0) / p, 4)}
                for n, p in sorted(self.pulls.items())}


def pareto_front(points: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The points no other point beats on both score (higher) and tokens per row (lower), by score descending."""
    front = []
    for p in points:
        dominated = any(
            q["score"] >= p["score"] and q["tokens_per_row"] <= p["tokens_per_row"]
            and (q["score"] > p["score"] or q["tokens_per_row"] < p["tokens_per_row"])
            for q in points
        )
        if not dominated and not any(f["score"] == p["score"] and f["tokens_per_row"] == p["tokens_per_row"]
                                     for f in front):
            front.append(p)
    return sorted(front, key=lambda p: (-p["score"], p["tokens_per_row"]))
