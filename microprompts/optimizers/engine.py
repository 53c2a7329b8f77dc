"""The search engine that strategies drive: expand a parent with bandit-chosen operators, screen children on a dev
minibatch (successive halving), promote the promising ones to the full dev set, accept a child over its parent only
when it beats it on paired dev rows by more than the noise, and journal every candidate. With dev large enough, a
slice of it is held out: no candidate is selected on it, and `conclude()` re-scores the finalists there (with calls
the planner kept back) before the winner is chosen.

Everything is sequential and seeded: one RNG for the search, and for each operator call a fresh RNG derived from
(seed, expansion number, parent id, operator, attempt), so a replay retraces the run exactly. Building an engine
does nothing; `start()` scores the baseline (the first budget it spends).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

from microprompts.flows import Flow
from microprompts.flows.address import check_mutation, is_frozen
from microprompts.models import BudgetExceeded, ModelCaller
from microprompts.models.phases import phase
from microprompts.nodes import Runtime
from microprompts.optimizers import finals
from microprompts.optimizers.candidate import Candidate, CandidateStatus, Mutation, Pending, Record, trajectory
from microprompts.optimizers.evaluator import Evaluator, KeyedRows
from microprompts.optimizers.journal import CandidateEvent, FinalEvent, Journal, RejectedEvent
from microprompts.optimizers.mutators._focus import blame_weights
from microprompts.optimizers.mutators.base import MutationContext, Mutator
from microprompts.optimizers.planner import CallPlanner
from microprompts.optimizers.sampling import EngineRows, RowSampler
from microprompts.optimizers.selection import OperatorBandit, Paired, tied_at_cut, weak_seed_start
from microprompts.optimizers.settings import EngineSettings, Proposers
from microprompts.optimizers.space import SearchSpace

__all__ = ["Engine", "EngineRows", "EngineSettings", "Proposers"]


class Engine:
    """Shared machinery of every search strategy (see module docstring); strategies see it as a `SearchEngine`."""

    def __init__(
        self,
        flow: Flow,
        *,
        rows: EngineRows,
        evaluator: Evaluator,
        journal: Journal,
        proposers: Proposers = Proposers(),
        settings: EngineSettings = EngineSettings(),
        space: SearchSpace | None = None,
        on_record: Callable[[Record], None] | None = None,
    ) -> None:
        self.flow, self.rows, self.settings, self.space = flow, rows, settings, space
        self.evaluator, self.tracker, self.journal = evaluator, evaluator.tracker, journal
        self.proposers, self.on_record = proposers, on_record
        self.task_runtime = Runtime(model=evaluator.model, caller=evaluator.caller)  # operators asking the task model
        self.mutators = {m.name: m for m in proposers.mutators}
        self.train = [row for _, row in rows.train]
        selection, self.holdout = finals.split_holdout(rows.dev, settings.holdout, settings.min_holdout, settings.seed)
        self.rows = rows = EngineRows(dev=selection, train=rows.train)  # `dev` is what selection sees from here on
        self.planner = CallPlanner(self.tracker, journal, len(rows.dev))
        self.rng = random.Random(settings.seed)
        self.sampler = RowSampler(rows, settings.minibatch, self.rng)
        self.bandit = OperatorBandit(random.Random(f"{settings.seed}:bandit"))
        self.records: dict[str, Record] = {}
        self._screened: dict[str, KeyedRows] = {}
        self.scored: list[Record] = []  # full-dev records, in the order they were scored
        self._baseline: Record | None = None
        self._seen: set[str] = set()
        self._disabled: set[str] = set()
        self._expansions = 0
        self._winner: Record | None = None
        self._holdout_row_calls = 1  # task-model calls a held-out row takes, as the seed's dev rows took

    @property
    def baseline(self) -> Record:
        """The seed flow's record, scored on all of dev by `start()`."""
        if self._baseline is None:
            raise RuntimeError("the engine has not started: call start() to score the baseline")
        return self._baseline

    @property
    def frozen(self) -> tuple[str, ...]:
        """Address patterns no candidate may change."""
        return self.settings.frozen

    @property
    def caller(self) -> ModelCaller:
        """The task-model caller candidates compile with."""
        return self.evaluator.caller

    # --- scoring ---------------------------------------------------------------------------------
    def start(self) -> Record:
        """Score the seed flow on all of dev (the first budget spent) and make it the baseline; call it once."""
        if self._baseline is not None:
            raise RuntimeError("the engine has started already")
        self.flow.compile(caller=self.evaluator.caller)
        record = Record(Candidate(self.flow), None)
        self._seen.add(record.id)
        self.records[record.id] = record
        self._full(record)
        self._log(record, "baseline")
        self._baseline = record
        dev = [row for _, row in self.rows.dev]
        operators = [n for n in self.mutators if n != "induce" or self.proposers.model is not None]
        weak_seed_start(self.bandit, record.dev, self.train, dev, operators)  # a weak seed: `calibrate`, `induce`
        self._holdout_row_calls = math.ceil(max(1, self.evaluator.task_calls.get(record.id, 0)) / len(self.rows.dev))
        self._keep_back()
        return record

    def _keep_back(self) -> None:
        """Keep back the calls the held-out re-score takes, as the finalists stand now (see `holdout_reserve`)."""
        if self.holdout:
            ranked = self.top(self.scored, self.settings.finalists)
            rows, per_row = len(self.holdout), self._holdout_row_calls
            self.planner.reserve = finals.holdout_reserve(ranked, self.baseline, self.settings.finalists, rows, per_row)

    def _objective_on(self, record: Record, rows: KeyedRows) -> float:
        self.evaluator.run(record.candidate, rows)  # free when already scored there (the usual case)
        return self.settings.objective(
            self.evaluator.score(record.id, rows), self.evaluator.cost_per_row(record.id, rows)
        )

    def _full(self, record: Record) -> None:
        dev = self.rows.dev
        self.evaluator.run(record.candidate, dev)
        record.dev = self.evaluator.score(record.id, dev)
        record.tokens_per_row = self.evaluator.tokens_per_row(record.id, dev)
        record.prompt_tokens_per_row = self.evaluator.prompt_tokens_per_row(record.id, dev)
        record.objective = self.settings.objective(record.dev, self.evaluator.cost_per_row(record.id, dev))
        self.scored.append(record)

    def _row_objectives(self, record: Record, rows: KeyedRows) -> list[float]:
        result = self.evaluator.result(record.id, rows)
        return [self.settings.objective(r.score, self.evaluator.row_cost(record.id, r)) for r in result.rows]

    def row_scores(self, record: Record) -> list[float]:
        """A full-dev record's score on each dev row, in dev's order (the per-row Pareto pool reads them)."""
        return [r.score for r in self.evaluator.result(record.id, self.rows.dev).rows]

    def beats(self, child: Record, parent: Record) -> bool:
        """Whether `child` is promoted over `parent`: on the same dev rows, its mean gain in objective exceeds
        `confidence` standard errors of the per-row gains (a margin that shrinks as rows add up), or it ties them
        exactly with a cheaper prompt."""
        dev = self.rows.dev
        paired = Paired.of(self._row_objectives(child, dev), self._row_objectives(parent, dev))
        if paired.beats(self.settings.confidence):
            return True
        cheaper = (child.prompt_tokens_per_row or 0.0) < (parent.prompt_tokens_per_row or 0.0)
        return paired.tied and paired.se == 0.0 and cheaper

    def _parent_of(self, record: Record) -> Record:
        parent = self.records.get(record.candidate.parent or "")
        return parent if parent is not None and parent.dev is not None else self.baseline

    @property
    def incumbent(self) -> Record:
        """The winner once `conclude()` chose it; before, the best accepted full-dev candidate so far."""
        return self._winner if self._winner is not None else self.top(self.scored, 1)[0]

    def top(self, records: Sequence[Record], k: int) -> list[Record]:
        """The `k` best full-dev records by objective, leaving out children refused over their parent; ties go to
        the cheaper prompt (prompt tokens per row), then fewer tokens per row, then to the earlier."""
        ranked = sorted(
            (r for r in records if r.objective is not None and r.accepted is not False),
            key=lambda r: (-(r.objective or 0.0), r.prompt_tokens_per_row or 0.0, r.tokens_per_row or 0.0),
        )
        return ranked[:k]

    def conclude(self) -> Record:
        """Choose the winner (once; later calls return it): the `finalists` best and the seed are re-scored on the
        held-out rows with the calls kept back, and ranked there (see `rank_finalists`). Without held-out rows, or
        when the budget cannot re-score the best one, the best on dev wins. Journaled as a "final" event."""
        if self._winner is not None:
            return self._winner
        ranked = self.top(self.scored, self.settings.finalists)
        if not self.holdout or not ranked:
            self._winner = self.incumbent
            return self._winner
        finalists = ranked + ([self.baseline] if self.baseline not in ranked else [])
        self.planner.reserve = 0
        finals.reopen(self.tracker)
        for record in finalists:
            try:
                self.evaluator.run(record.candidate, self.holdout)
            except BudgetExceeded:
                break
            record.holdout = self.evaluator.score(record.id, self.holdout)
            record.holdout_objective = self._objective_on(record, self.holdout)
        chosen = finals.rank_finalists(finalists)
        best_on_dev = ranked[0].holdout is not None
        self._winner = chosen[0] if best_on_dev else ranked[0]
        reason = "best on the held-out rows" if best_on_dev else "best on dev: the budget left no held-out re-score"
        shown = finals.finalist_rows(finalists)
        self.journal.append(FinalEvent(id=self._winner.id, holdout_n=len(self.holdout), finalists=shown, reason=reason))
        return self._winner

    def screen(self, pending: Sequence[Pending], parent: Record, top_k: int = 1) -> list[Record]:
        """Score children on one minibatch; promote to full dev those that beat the incumbent there (by more than
        -`margin`), and the `top_k` best of the rest that are no worse than their parent there: a tie at that cut is
        settled on a second minibatch (`_level_picks`), then by the operator's standing (a weak seed's first moves,
        then its bandit estimate) and the shorter prompt (its size, not the tokens spent, so that a repaired reply does
        not change the path); else the cheapest child, seldom one with examples, would win ties. Promoted children go
        to full dev best first (the calls left may finish only some); one is accepted only when it `beats` its parent
        on paired rows. Rewards the operators (a win: accepted, or above its parent on the rows it was screened on)."""
        if not pending:
            return []
        rows = self.sampler.minibatch()
        whole = len(rows) == len(self.rows.dev)
        margin = self.settings.margin
        pending = self.planner.affordable(pending, len(rows), whole, release=self._seen.discard)
        incumbent_mb, parent_mb = self._objective_on(self.incumbent, rows), self._objective_on(parent, rows)
        records: list[Record] = []
        try:
            for p in pending:
                record = Record(p.candidate, p.operator, p.touched)
                self.records[record.id] = record
                self._screen_on(record, rows)
                records.append(record)
            promote = [r for r in records if whole or (r.minibatch_objective or 0.0) > incumbent_mb - margin]
            level = [r for r in records if r not in promote and (r.minibatch_objective or 0.0) >= parent_mb - margin]
            promote += self._level_picks(sorted(level, key=lambda r: self._screen_rank(r, rows)), top_k, parent, rows)
            for record in sorted(promote, key=lambda r: self._screen_rank(r, rows)):  # the calls left may finish some
                if self.planner.can_finish(record, record.minibatch_n, self.evaluator.task_calls.get(record.id, 0)):
                    self._full(record)
                    record.accepted = self.beats(record, parent)
        except BudgetExceeded:
            for record in records:
                self._log(record, "promoted" if record.dev is not None else "stopped")
            raise
        for record in records:
            if record.dev is not None:
                won = bool(record.accepted)
            else:
                won = (record.minibatch_objective or 0.0) > self._objective_on(parent, self._screened[record.id])
            self.bandit.record(record.operator or "", 1.0 if won else 0.0)
            self._log(record, "promoted" if record.dev is not None else "screened_out")
        return records

    def _screen_on(self, record: Record, rows: KeyedRows) -> None:
        self.evaluator.run(record.candidate, rows)
        record.minibatch, record.minibatch_n = self.evaluator.score(record.id, rows), len(rows)
        record.minibatch_objective = self._objective_on(record, rows)
        self._screened[record.id] = rows  # the rows a child was screened on (a tie adds a second minibatch)

    def _level_picks(self, ranked: list[Record], places: int, parent: Record, rows: KeyedRows) -> list[Record]:
        """The `places` best of the children that held their parent's minibatch score (`ranked`, best first). When the
        cut falls inside a tie, up to `tie_rung` of the tied are scored on a second minibatch of other dev rows and cut
        on both, among those still at or above their parent: a tie on a few rows is no evidence, and standing would
        choose by a prior. Without the calls or the other rows for it, the standing decides."""
        sure, tied = tied_at_cut(ranked, places, lambda r: r.minibatch_objective or 0.0)
        contenders = tied[: self.settings.tie_rung]
        more = self.sampler.minibatch(exclude={key for key, _ in rows}) if len(contenders) > 1 else []
        if not more or not self.planner.leaves_room(self.planner.screening_calls(contenders, len(more))):
            return ranked[:places]
        both = [*rows, *more]
        floor = self._objective_on(parent, both) - self.settings.margin
        for record in contenders:
            self._screen_on(record, both)
        held = [r for r in contenders if (r.minibatch_objective or 0.0) >= floor]
        return sure + sorted(held, key=lambda r: self._screen_rank(r, both))[: places - len(sure)]

    def _screen_rank(self, record: Record, rows: KeyedRows) -> tuple[float, int, float, float]:
        """A screened child's place, best first: its minibatch objective, its operator's standing (a weak seed's
        first moves, then the record), its prompt's size."""
        return (
            -(record.minibatch_objective or 0.0),
            *self.bandit.standing(record.operator or ""),
            self.evaluator.prompt_tokens_per_row(record.id, rows),
        )

    def score_full(self, candidate: Candidate, operator: str, touched: list[str]) -> Record | None:
        """Score a candidate on the full dev set directly (enumeration); None when it was seen before, or when the
        calls left cannot score it at `row_calls` a row (journaled as skipped: a cheaper one may still fit)."""
        if candidate.id in self._seen:
            return None
        self.planner.require_dev()
        rows = len(self.rows.dev)
        if not self.planner.fits(
            candidate,
            operator,
            rows * self.planner.row_calls(candidate, touched),
            f"calls that scoring it on {rows} dev rows takes",
        ):
            return None
        self._seen.add(candidate.id)
        record = Record(candidate, operator, touched)
        self.records[record.id] = record
        try:
            self._full(record)
            record.accepted = self.beats(record, self._parent_of(record))
        finally:
            self._log(record, "evaluated" if record.dev is not None else "stopped")
        return record

    # --- mutation --------------------------------------------------------------------------------
    def _open(self, mutator: Mutator, flow: Flow) -> bool:
        try:
            return any(not is_frozen(a, self.frozen) for a in mutator.addresses(flow))
        except Exception:  # noqa: BLE001 - a broken operator is skipped, not fatal
            return False

    def expand(self, parent: Record, n: int) -> list[Pending]:
        """Up to `n` valid new children of `parent`, each from an operator the bandit picks."""
        self.tracker.check_time()
        self.planner.require_dev()
        self._expansions += 1
        operators = [
            name for name, m in self.mutators.items() if name not in self._disabled and self._open(m, parent.flow)
        ]
        out: list[Pending] = []
        blocked: set[str] = set()
        used: set[str] = set()
        evaluation = None
        # each micro-prompt's share of the blame for the parent's failing dev rows (no call): where to mutate
        full = parent.dev is not None and self.evaluator.has(parent.id, self.rows.dev)
        focus = blame_weights(parent.flow, self.evaluator.result(parent.id, self.rows.dev).rows) if full else {}
        attempts = 0
        while len(out) < n and attempts < 3 * n + len(operators):
            names = [o for o in operators if o not in blocked and o not in self._disabled]
            fresh = [o for o in names if o not in used]  # one child per operator while others are left
            if not names:
                break
            name = self.bandit.choose(fresh or names)
            used.add(name)
            mutator = self.mutators[name]
            attempts += 1
            if mutator.needs_evaluation and evaluation is None and self.rows.train:
                feedback = self.sampler.feedback()  # the parent's run on train rows: paid only if a child can follow
                calls = len(feedback) * self.planner.row_calls(parent.candidate, list(parent.flow.nodes))
                if not self.evaluator.has(parent.id, feedback) and not self.planner.leaves_room(calls):
                    blocked.add(name)
                    continue
                evaluation = self.evaluator.run(parent.candidate, feedback)
            ctx = MutationContext(
                train=self.train,
                metric=self.evaluator.metric,
                evaluation=evaluation,
                optimizer_model=self.proposers.model,
                rng=random.Random(f"{self.settings.seed}:{self._expansions}:{parent.id}:{name}:{attempts}"),
                caller=self.proposers.caller,
                history=trajectory(self.records.values()),
                models=self.settings.models,
                frozen=self.frozen,
                focus=focus,
                pool=[r.flow for r in self.top(self.scored, 4) if r.id != parent.id],
                runtime=self.task_runtime,
            )
            exhausted_before = "optimizer" in self.tracker.exhausted
            try:
                with phase("mutating"):
                    proposals = mutator.propose(parent.candidate, ctx, 1)
            except BudgetExceeded:
                if "task" in self.tracker.exhausted:
                    raise
                self._disabled.add(name)
                continue
            except Exception as exc:  # noqa: BLE001 - a failing operator loses this turn, the run goes on
                self.reject(parent, name, f"{type(exc).__name__}: {exc}")
                blocked.add(name)
                continue
            if "optimizer" in self.tracker.exhausted and not exhausted_before:
                self._disabled.add(name)
            if not proposals:
                blocked.add(name)
            for flow, mutation in proposals:
                pending = self._accept(parent, mutator, flow, mutation)
                if pending is None:
                    blocked.add(name)  # invalid or already seen: give the other operators a turn
                else:
                    out.append(pending)
        return out

    def _accept(self, parent: Record, mutator: Mutator, flow: Flow, mutation: Mutation) -> Pending | None:
        try:
            flow.compile(caller=self.evaluator.caller)
            touched = check_mutation(parent.flow, flow, mutator.addresses(parent.flow), self.frozen)
            candidate = Candidate(flow, parent=parent.id, mutation=mutation, generation=parent.candidate.generation + 1)
            cid = candidate.id
        except Exception as exc:  # noqa: BLE001 - invalid children are dropped and journaled
            self.reject(parent, mutator.name, f"{type(exc).__name__}: {exc}")
            self.bandit.record(mutator.name, 0.0)
            return None
        if not touched or cid in self._seen:
            return None
        self._seen.add(cid)
        return Pending(candidate, mutator.name, sorted(touched))

    def reject(self, parent: Record, operator: str, reason: str) -> None:
        """Journal a proposal that was invalid."""
        self.journal.append(RejectedEvent(parent=parent.id, operator=operator, reason=reason[:300]))

    def _log(self, record: Record, status: CandidateStatus) -> None:
        """Set the record's final status and journal it."""
        record.status = status
        if status in ("promoted", "evaluated") and self._winner is None:
            self._keep_back()
        self.journal.append(CandidateEvent.of(record, len(self.rows.dev), self.tracker.total, self.tracker.seconds()))
        if self.on_record is not None:
            self.on_record(record)
