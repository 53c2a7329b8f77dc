"""Search strategies over whole flows: beam search, regularized evolution, a per-row Pareto pool (GEPA's parent
choice), and enumeration of a declared space.

A strategy only decides which candidates to expand and keep; the engine does the scoring, successive halving,
paired acceptance of a child over its parent, operator choice and journaling, and `conclude()` picks the winner
(re-scoring the finalists on held-out rows) when the strategy is done or the budget stops it. A strategy sees the
engine only through `SearchEngine`, so a custom one needs nothing else. Each strategy runs until it is done or the
budget raises BudgetExceeded.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from microprompts.flows.address import MutationViolation, check_mutation
from microprompts.models import BudgetExceeded, ModelCaller
from microprompts.optimizers.candidate import Candidate, Mutation, Pending, Record
from microprompts.optimizers.selection import row_pareto
from microprompts.optimizers.space import SearchSpace

__all__ = [
    "BeamSearch",
    "Enumerate",
    "ParetoSearch",
    "RegularizedEvolution",
    "Search",
    "SearchEngine",
    "concluding",
    "make_search",
]


class SearchEngine(Protocol):
    """What a search strategy may ask of the engine that scores, screens and journals candidates."""

    @property
    def baseline(self) -> Record:
        """The seed flow's record, scored on all of dev."""
        ...

    @property
    def rng(self) -> random.Random:
        """The search's seeded RNG (draws from it are part of the run's path)."""
        ...

    @property
    def frozen(self) -> tuple[str, ...]:
        """Address patterns no candidate may change."""
        ...

    @property
    def space(self) -> SearchSpace | None:
        """The search space the run was given, if any."""
        ...

    @property
    def caller(self) -> ModelCaller:
        """The task-model caller candidates compile with."""
        ...

    def expand(self, parent: Record, n: int) -> list[Pending]:
        """Up to `n` valid new children of `parent`."""
        ...

    def screen(self, pending: Sequence[Pending], parent: Record, top_k: int = 1) -> list[Record]:
        """Score children on a minibatch and promote the promising ones to full dev."""
        ...

    def top(self, records: Sequence[Record], k: int) -> list[Record]:
        """The `k` best full-dev records."""
        ...

    def score_full(self, candidate: Candidate, operator: str, touched: list[str]) -> Record | None:
        """Score a candidate on full dev directly (None when seen or unaffordable)."""
        ...

    def reject(self, parent: Record, operator: str, reason: str) -> None:
        """Journal a proposal that was invalid."""
        ...

    def conclude(self) -> Record:
        """Choose the winner (re-scoring the finalists on held-out rows); call it once the search is done."""
        ...

    def row_scores(self, record: Record) -> list[float]:
        """A full-dev record's score on each dev row, in dev's order."""
        ...


def concluding(engine: SearchEngine, search: Callable[[SearchEngine], None]) -> None:
    """Run `search` on `engine`, then have the engine choose its winner, also when the budget stops the search
    (the held-out re-score has calls kept back for it); BudgetExceeded still reaches the caller."""
    try:
        search(engine)
    except BudgetExceeded:
        engine.conclude()
        raise
    engine.conclude()


class Search(Protocol):
    """A search strategy: `run(engine)` drives the engine; `describe()` says what it is (for the journal)."""

    name: str

    def run(self, engine: SearchEngine) -> None:
        """Search until done; BudgetExceeded may escape (the caller stops cleanly)."""
        ...

    def describe(self) -> dict[str, Any]:
        """Its settings as JSON."""
        ...


@dataclass
class BeamSearch:
    """Keep the `beam_width` best candidates; each level, expand each into `mutations_per_candidate` children."""

    beam_width: int = 3
    depth: int = 6
    mutations_per_candidate: int = 4
    top_k: int = 1  # per parent, the best children that beat it on the minibatch also go to full dev
    name: str = "beam"

    def run(self, engine: SearchEngine) -> None:
        """Level by level; the beam keeps its members unless accepted children beat them (elitist)."""
        concluding(engine, self._levels)

    def _levels(self, engine: SearchEngine) -> None:
        beam = [engine.baseline]
        for _ in range(self.depth):
            promoted = []
            for parent in beam:
                children = engine.expand(parent, self.mutations_per_candidate)
                promoted += [r for r in engine.screen(children, parent, self.top_k) if r.dev is not None]
            beam = engine.top(beam + promoted, self.beam_width)

    def describe(self) -> dict[str, Any]:
        """Settings as JSON."""
        return asdict(self)


@dataclass
class RegularizedEvolution:
    """Aging evolution (Real et al. 2019): a tournament of `sample_size` picks the parent, its child joins the
    population if it passes screening, and the oldest member leaves once there are `population`."""

    population: int = 8
    sample_size: int = 3
    cycles: int = 50
    name: str = "evolution"

    def run(self, engine: SearchEngine) -> None:
        """Fill the population from mutations of the baseline, then run the cycles; a child joins only when it was
        accepted over its parent."""
        concluding(engine, self._cycles)

    def _cycles(self, engine: SearchEngine) -> None:
        members = deque([engine.baseline])
        tries = 0
        while len(members) < self.population and tries < 2 * self.population:
            tries += 1
            for record in engine.screen(engine.expand(engine.baseline, 1), engine.baseline):
                if record.accepted:
                    members.append(record)
        for _ in range(self.cycles):
            picked = sorted(engine.rng.sample(range(len(members)), min(self.sample_size, len(members))))
            parent = engine.top([members[i] for i in picked], 1)[0]
            for record in engine.screen(engine.expand(parent, 1), parent):
                if record.accepted:
                    members.append(record)
                    if len(members) > self.population:
                        members.popleft()

    def describe(self) -> dict[str, Any]:
        """Settings as JSON."""
        return asdict(self)


@dataclass
class ParetoSearch:
    """GEPA's loop: each iteration picks a parent from the per-row Pareto pool of every candidate scored on dev (one
    that is best on some dev row stays eligible, weighted by how many rows it is best on), so the search does not
    collapse on one line; its children are screened, and those that reach dev join the pool."""

    iterations: int = 40
    mutations_per_candidate: int = 2
    name: str = "pareto"

    def run(self, engine: SearchEngine) -> None:
        """Iterate until done or the budget stops it."""
        concluding(engine, self._iterate)

    def _iterate(self, engine: SearchEngine) -> None:
        pool = [engine.baseline]
        for _ in range(self.iterations):
            parent = self.pick(engine, pool)
            for record in engine.screen(engine.expand(parent, self.mutations_per_candidate), parent):
                if record.dev is not None:
                    pool.append(record)

    @staticmethod
    def pick(engine: SearchEngine, pool: Sequence[Record]) -> Record:
        """A parent drawn with the engine's RNG from the pool's per-row Pareto front, by rows won."""
        wins = row_pareto({r.id: engine.row_scores(r) for r in pool})
        members = [r for r in pool if r.id in wins]
        return engine.rng.choices(members, weights=[wins[r.id] for r in members])[0]

    def describe(self) -> dict[str, Any]:
        """Settings as JSON."""
        return asdict(self)


@dataclass
class Enumerate:
    """Score every flow of a search space on the full dev set, in cartesian order (up to `limit`)."""

    space: SearchSpace | None = None
    limit: int | None = None
    name: str = "enumerate"

    def resolve(self, engine: SearchEngine) -> SearchSpace:
        """The space to enumerate: the given one, else the engine's, else the built-in default for the flow."""
        return self.space or engine.space or SearchSpace.default(engine.baseline.flow)

    def run(self, engine: SearchEngine) -> None:
        """Every combination in order; invalid ones and ones touching frozen parts are journaled and skipped."""
        concluding(engine, self._combinations)

    def _combinations(self, engine: SearchEngine) -> None:
        space = self.resolve(engine)
        base = engine.baseline
        for count, (labels, flow) in enumerate(space.expand()):
            if self.limit is not None and count >= self.limit:
                break
            if isinstance(flow, Exception):
                engine.reject(base, self.name, f"{type(flow).__name__}: {flow}")
                continue
            try:
                flow.compile(caller=engine.caller)
                touched = check_mutation(base.flow, flow, list(space.choices) + _orders(space), engine.frozen)
            except (MutationViolation, ValueError, TypeError, KeyError) as exc:
                engine.reject(base, self.name, f"{type(exc).__name__}: {exc}")
                continue
            mutation = Mutation(operator=self.name, kind="structure", address="space", after=labels)
            engine.score_full(
                Candidate(flow, parent=base.id, mutation=mutation, generation=1), self.name, sorted(touched)
            )

    def describe(self) -> dict[str, Any]:
        """Settings as JSON."""
        return {"name": self.name, "limit": self.limit, "space": self.space.describe() if self.space else None}


def _orders(space: SearchSpace) -> list[str]:
    return sorted({a.split(".sections.")[0] + ".sections" for a in space.choices if ".sections." in a})


def make_search(search: str | Search, space: SearchSpace | None = None) -> Search:
    """A strategy from its name (`beam`, `evolution`, `pareto`, `enumerate`) or as given."""
    if not isinstance(search, str):
        return search
    if search == "beam":
        return BeamSearch()
    if search == "evolution":
        return RegularizedEvolution()
    if search == "enumerate":
        return Enumerate(space)
    if search == "pareto":
        return ParetoSearch()
    raise ValueError(f"unknown search {search!r}: expected beam, evolution, pareto, enumerate or a Search object")
