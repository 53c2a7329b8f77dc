"""Selection helpers: the objective, the paired comparison that promotes a child over its parent, a UCB1 bandit over
operators, and the Pareto archive over score and cost."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from microprompts.evals.evaluate import row_parts

T = TypeVar("T")

__all__ = [
    "DEFAULT_PRIORS",
    "Objective",
    "OperatorBandit",
    "Paired",
    "weak_seed_start",
    "majority_share",
    "pareto_front",
    "row_pareto",
    "tied_at_cut",
    "weak_seed",
]


@dataclass(frozen=True)
class Objective:
    """What selection maximizes: the score, minus `cost_weight` times the cost per row (tokens per row; with prices
    per model, dollars or seconds per row: see `microprompts.optimizers.cost`)."""

    cost_weight: float = 0.0

    def __call__(self, score: float, cost_per_row: float) -> float:
        """The objective of a candidate that scored `score` at `cost_per_row`."""
        return score - self.cost_weight * cost_per_row


@dataclass(frozen=True)
class Paired:
    """Per-row differences (child minus parent) on the same rows: their mean, standard error and count.

    A child beats its parent when the mean gain exceeds `z` standard errors: the margin shrinks as 1/sqrt(rows), so
    a one-row edge on a few rows (a lucky minibatch) is refused while a steady gain over many rows is not."""

    mean: float
    se: float
    n: int

    @classmethod
    def of(cls, child: Sequence[float], parent: Sequence[float]) -> Paired:
        """The comparison of two equally long per-row series (the same rows, in the same order)."""
        if len(child) != len(parent):
            raise ValueError(f"paired rows differ in number: {len(child)} against {len(parent)}")
        diffs = [c - p for c, p in zip(child, parent, strict=True)]
        n = len(diffs)
        if n == 0:
            return cls(0.0, 0.0, 0)
        mean = sum(diffs) / n
        var = sum((d - mean) ** 2 for d in diffs) / (n - 1) if n > 1 else 0.0
        return cls(mean, math.sqrt(var / n), n)

    def beats(self, z: float) -> bool:
        """True when the mean gain is positive and more than `z` standard errors."""
        return self.n > 0 and self.mean > 1e-12 and self.mean > z * self.se

    @property
    def tied(self) -> bool:
        """True when the mean gain is zero (every row the same, or wins and losses cancel)."""
        return self.n > 0 and abs(self.mean) <= 1e-12


# Prior mean reward per operator, worth one pull: where to look first under a small budget. Measured here on
# SmolLM2 and Qwen 0.5B (DESIGN.md): constrained outputs, the reply format, the right examples and the data format
# move small models most; phrase edits and k-sample votes (k times the calls) least. Evidence overrides a prior after a
# few pulls, so operator choice is still learned per task and model.
DEFAULT_PRIORS: dict[str, float] = {
    "choices": 0.7,
    "reply_format": 0.6,
    "itemize": 0.6,  # a total listed, added up in code: BBH object_counting on Qwen 0.5B 0.27 -> 0.58 (train rows)
    "choose_examples": 0.55,
    "nearest_examples": 0.56,  # choose_examples per row (KATE: the nearest rows beat a random draw), so tried first
    "example_count": 0.5,
    "bootstrap_examples": 0.5,
    "calibrate": 0.45,  # a label field scored, not generated: a model stuck on one label is unstuck by its biases
    "reflect": 0.45,  # GEPA's reflective proposal: several fixes of the blamed node from one optimizer call
    "textual_gradient": 0.4,
    "induce": 0.35,
    "drop_input": 0.4,  # a distracting input dropped: intake's catalog, product accuracy 0.07 -> 0.58 on SmolLM2
    "data_format": 0.35,
    "toggle_reasoning": 0.3,
    "crossover": 0.3,  # needs a pool: until a child is promoted to full dev it proposes nothing and the engine moves on
    "opro": 0.3,
    "model": 0.3,
    "paraphrase": 0.25,
    "add_guideline": 0.2,
    "phrase_bank": 0.2,
    "remove_node": 0.2,
    "compress": 0.15,
    "insert_check": 0.15,
    "split_node": 0.15,
    "temperature": 0.1,
    "max_tokens": 0.1,
    "samples": 0.08,
    "vote": 0.08,
    "drop_section": 0.1,
    "reorder_sections": 0.1,
    "delete_sentence": 0.1,
    "swap_sentences": 0.1,
}
UNKNOWN_PRIOR = 0.2


@dataclass
class OperatorBandit:
    """UCB1 over operators with a prior worth one pull, rewarded 1 when a child beat its parent, else 0.

    Untried operators go first, highest prior first (ties in a seeded random order), so choices are deterministic.
    """

    rng: random.Random
    exploration: float = 1.0
    pulls: dict[str, int] = field(default_factory=dict)
    wins: dict[str, float] = field(default_factory=dict)
    priors: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_PRIORS))
    preferred: list[str] = field(default_factory=list)  # the next choices, when offered (see `prefer`)
    favoured: frozenset[str] = frozenset()  # the names `prefer` was given (see `standing`)

    def prefer(self, *names: str) -> None:
        """Make the next `choose` calls return `names` in order, each when it is among the names offered (each call
        uses up one: either way, the calls after them choose as usual). The seeded shuffle still happens, so the
        choices after them are the ones they would be."""
        self.preferred = list(names)
        self.favoured = frozenset(names)

    def prior(self, name: str) -> float:
        """The operator's prior mean reward."""
        return self.priors.get(name, UNKNOWN_PRIOR)

    def choose(self, names: Sequence[str]) -> str:
        """The operator to try next among `names`."""
        if not names:
            raise ValueError("no operator to choose from")
        order = list(names)
        self.rng.shuffle(order)
        preferred = self.preferred.pop(0) if self.preferred else None
        if preferred in order:
            return preferred
        untried = [n for n in order if not self.pulls.get(n)]
        if untried:
            return max(untried, key=self.prior)
        total = sum(self.pulls.get(n, 0) for n in names) + len(names)

        def ucb(name: str) -> float:
            n = self.pulls[name] + 1  # the prior counts as one pull
            mean = (self.wins.get(name, 0.0) + self.prior(name)) / n
            return mean + self.exploration * math.sqrt(2 * math.log(total) / n)

        return max(order, key=ucb)

    def estimate(self, name: str) -> float:
        """The operator's mean reward so far, its prior counted as one pull (no exploration bonus)."""
        return (self.wins.get(name, 0.0) + self.prior(name)) / (self.pulls.get(name, 0) + 1)

    def standing(self, name: str) -> tuple[int, float]:
        """The operator's place for breaking a tie, best first (lowest): an operator `prefer` named (the run's own
        judgement of its dev rows, e.g. a weak seed's calibration) goes ahead of the rest until its first outcome is
        recorded, since before that its estimate is a generic prior; then by `estimate`."""
        return (0 if name in self.favoured and not self.pulls.get(name) else 1, -self.estimate(name))

    def record(self, name: str, reward: float) -> None:
        """Add one outcome for `name`."""
        self.pulls[name] = self.pulls.get(name, 0) + 1
        self.wins[name] = self.wins.get(name, 0.0) + reward

    def stats(self) -> dict[str, dict[str, float]]:
        """Pulls and mean reward per operator, for the report."""
        return {
            n: {"pulls": p, "mean_reward": round(self.wins.get(n, 0.0) / p, 4), "prior": self.prior(n)}
            for n, p in sorted(self.pulls.items())
        }


WEAK_SEED = 0.5  # a seed scoring below this on dev (metrics score 0 to 1) is weak: its instruction is worth re-inducing


def majority_share(train: Sequence[Any], dev: Sequence[Any]) -> float | None:
    """The share of `dev` rows whose expected output is train's most common one: what always answering that scores
    under exact match. None when train repeats no output (no common answer: free text, not labels) or a side is empty.
    """
    if not train or not dev:
        return None

    def key(row: Any) -> str:
        return json.dumps(row_parts(row)[1], sort_keys=True, default=str)

    answer, count = Counter(key(r) for r in train).most_common(1)[0]
    if count < 2:
        return None
    return sum(key(r) == answer for r in dev) / len(dev)


def weak_seed(score: float | None, train: Sequence[Any], dev: Sequence[Any]) -> bool:
    """Whether the seed's dev score is weak: below WEAK_SEED, or no better than always answering train's most common
    output (`majority_share`, where train has one and it is not every dev row's): a seed that only ties a constant
    answer has shown nothing of the task."""
    if score is None:
        return False
    majority = majority_share(train, dev)
    return score < WEAK_SEED or (majority is not None and score <= majority + 1e-9 and majority < 1.0)


def weak_seed_start(
    bandit: OperatorBandit, score: float | None, train: Sequence[Any], dev: Sequence[Any], operators: Collection[str]
) -> bool:
    """The starting moves of a weak seed (`weak_seed`): its first expansions try, in order, calibrated labels (Zhao et
    al. 2021: a small model stuck on one label is unstuck by per-label biases, and the fit is never below the best
    constant answer on train) and instruction induction from the train examples (APE/SAMMO: `induce`, there only
    with an optimizer model), those of them among `operators`. True when one was arranged; otherwise the bandit's
    order is unchanged. An operator with nothing to propose (no label field, a model without log-probabilities) is
    passed over by the engine, and the next one is tried."""
    first = [name for name in ("calibrate", "induce") if name in operators]
    if not first or not weak_seed(score, train, dev):
        return False
    bandit.prefer(*first)
    return True


def tied_at_cut(ranked: Sequence[T], places: int, value: Callable[[T], float]) -> tuple[list[T], list[T]]:
    """`ranked` (best `value` first) cut after `places` items, when the cut falls inside a tie: the items above the
    tied value, and every item at it (more than the places left for them). Without such a tie: the first `places`
    items, and no tied ones."""
    head = list(ranked[:places])
    if places <= 0 or len(ranked) <= places or abs(value(ranked[places]) - value(ranked[places - 1])) > 1e-12:
        return head, []
    edge = value(ranked[places - 1])
    return [r for r in head if value(r) > edge + 1e-12], [r for r in ranked if abs(value(r) - edge) <= 1e-12]


def pareto_front(points: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The points no other point beats on both score (higher) and tokens per row (lower), by score descending."""
    front = []
    for p in points:
        dominated = any(
            q["score"] >= p["score"]
            and q["tokens_per_row"] <= p["tokens_per_row"]
            and (q["score"] > p["score"] or q["tokens_per_row"] < p["tokens_per_row"])
            for q in points
        )
        if not dominated and not any(
            f["score"] == p["score"] and f["tokens_per_row"] == p["tokens_per_row"] for f in front
        ):
            front.append(p)
    return sorted(front, key=lambda p: (-p["score"], p["tokens_per_row"]))


def row_pareto(scores: Mapping[str, Sequence[float]]) -> dict[str, int]:
    """GEPA's per-row Pareto pool: each candidate that is best on some row (and that no other candidate matches or
    beats on every row while beating it on one), with the number of rows it is best on; rows that nobody gets any
    score on count for none. Candidates keep `scores`' order; with no row won by anyone, the first one alone."""
    ids = list(scores)
    if not ids:
        return {}
    rows = len(scores[ids[0]])
    wins: dict[str, int] = dict.fromkeys(ids, 0)
    for i in range(rows):
        best = max(scores[c][i] for c in ids)
        if best <= 0:
            continue
        for c in ids:
            if scores[c][i] == best:
                wins[c] += 1

    def dominated(c: str) -> bool:
        return any(
            o != c
            and all(a >= b for a, b in zip(scores[o], scores[c], strict=True))
            and (any(a > b for a, b in zip(scores[o], scores[c], strict=True)) or ids.index(o) < ids.index(c))
            for o in ids
        )

    pool = {c: n for c, n in wins.items() if n > 0 and not dominated(c)}
    return pool or {ids[0]: 1}
