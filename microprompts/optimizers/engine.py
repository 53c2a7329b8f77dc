"""The search engine that strategies drive: expand a parent with bandit-chosen operators, screen children on a dev
minibatch (successive halving), promote the promising ones to the full dev set, and journal every candidate.

Everything is sequential and seeded: one RNG for the search, and for each operator call a fresh RNG derived from
(seed, expansion number, parent id, operator, attempt), so a replay retraces the run exactly.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from typing import Any

import networkx as nx
from langchain_core.language_models import BaseChatModel

from microprompts.data import spread_by
from microprompts.evals import Metric
from microprompts.evals.evaluate import row_parts
from microprompts.flows import Flow
from microprompts.models import BudgetExceeded, ModelCaller
from microprompts.nodes import MicroPrompt
from microprompts.optimizers.addresses import check_mutation, is_frozen
from microprompts.optimizers.budget import BudgetedCaller, BudgetTracker
from microprompts.optimizers.candidate import Candidate, Mutation, Pending, Record
from microprompts.optimizers.evaluator import Evaluator, KeyedRows
from microprompts.optimizers.journal import Journal
from microprompts.optimizers.mutators.base import MutationContext
from microprompts.optimizers.selection import Objective, OperatorBandit
from microprompts.optimizers.space import SearchSpace

__all__ = ["Engine"]


class Engine:
    """Shared machinery of every search strategy (see module docstring)."""

    def __init__(
        self, *, flow: Flow, train: Sequence[Any], train_rows: KeyedRows, dev_rows: KeyedRows, metric: Metric,
        mutators: Sequence[Any], evaluator: Evaluator, tracker: BudgetTracker, journal: Journal, seed: int,
        minibatch: int = 8, margin: float = 0.0, objective: Objective = Objective(),
        optimizer_caller: BudgetedCaller | None = None, optimizer_model: BaseChatModel | None = None,
        models: Sequence[str] = (), frozen: Sequence[str] = (), on_record: Callable[[Record], None] | None = None,
    ) -> None:
        self.seed, self.train, self.metric = seed, train, metric
        self.train_rows, self.dev_rows = train_rows, dev_rows
        self.mutators = {m.name: m for m in mutators}
        self.evaluator, self.tracker, self.journal = evaluator, tracker, journal
        self.minibatch, self.margin, self.objective = minibatch, margin, objective
        self.optimizer_caller, self.optimizer_model = optimizer_caller, optimizer_model
        self.models, self.frozen = tuple(models), tuple(frozen)
        self.on_record = on_record
        self.rng = random.Random(seed)
        self.labels = _few_labels(dev_rows, minibatch)
        self.bandit = OperatorBandit(random.Random(f"{seed}:bandit"))
        self.records: dict[str, Record] = {}
        self.scored: list[Record] = []  # full-dev records, in the order they were scored
        self.seen: set[str] = set()
        self.disabled: set[str] = set()
        self.expansions = 0
        self.space: SearchSpace | None = None
        self.baseline = self._start(flow)

    @property
    def caller(self) -> ModelCaller:
        """The task-model caller candidates compile with."""
        return self.evaluator.caller

    # --- scoring ---------------------------------------------------------------------------------
    def _start(self, flow: Flow) -> Record:
        flow.compile(caller=self.evaluator.caller)
        record = Record(Candidate(flow), None, status="baseline")
        self.seen.add(record.id)
        self.records[record.id] = record
        self._full(record)
        self._log(record)
        return record

    def _objective_on(self, record: Record, rows: KeyedRows) -> float:
        self.evaluator.run(record.candidate, rows)  # free when already scored there (the usual case)
        return self.objective(self.evaluator.score(record.id, rows), self.evaluator.tokens_per_row(record.id, rows))

    def _full(self, record: Record) -> None:
        self.evaluator.run(record.candidate, self.dev_rows)
        record.dev = self.evaluator.score(record.id, self.dev_rows)
        record.tokens_per_row = self.evaluator.tokens_per_row(record.id, self.dev_rows)
        record.objective = self.objective(record.dev, record.tokens_per_row)
        self.scored.append(record)

    @property
    def incumbent(self) -> Record:
        """The best full-dev candidate so far (the cheaper, then the earlier, among equals)."""
        return self.top(self.scored, 1)[0]

    def top(self, records: Sequence[Record], k: int) -> list[Record]:
        """The `k` best full-dev records by objective; ties go to fewer tokens per row, then to the earlier."""
        ranked = sorted((r for r in records if r.objective is not None),
                        key=lambda r: (-(r.objective or 0.0), r.tokens_per_row or 0.0))
        return ranked[:k]

    def minibatch_rows(self) -> KeyedRows:
        """A fresh seeded minibatch of dev rows (all of dev when the minibatch is not smaller). When dev's expected
        outputs are a few labels, it holds them in dev's proportions: a random 8 of a 60/40 yes/no dev set of 30 holds
        7 or 8 of one label about one draw in 14, and a child answering that label everywhere then screens near
        perfect."""
        if self.minibatch <= 0 or self.minibatch >= len(self.dev_rows):
            return list(self.dev_rows)
        if self.labels is None:
            picked = sorted(self.rng.sample(range(len(self.dev_rows)), self.minibatch))
        else:
            picked = sorted(spread_by(range(len(self.dev_rows)), self.labels.__getitem__, self.rng)[:self.minibatch])
        return [self.dev_rows[i] for i in picked]

    def screen(self, pending: Sequence[Pending], parent: Record, top_k: int = 1) -> list[Record]:
        """Score children on one minibatch; promote to full dev those that beat the incumbent there (by more than
        -`margin`), and the `top_k` best of the rest that are no worse than their parent there. A minibatch of a few
        rows ties often, so ties go to the operator with the better record (its bandit estimate), then to the
        shorter prompt: otherwise the cheapest child (seldom the one carrying examples) always wins them. The prompt's
        size, not the tokens spent, so that a repaired bad reply does not change the path. Rewards the operators (a
        win is beating the parent); journals every child."""
        if not pending:
            return []
        rows = self.minibatch_rows()
        whole = len(rows) == len(self.dev_rows)
        pending = self._affordable(pending, len(rows), whole)
        incumbent_mb, parent_mb = self._objective_on(self.incumbent, rows), self._objective_on(parent, rows)
        records: list[Record] = []
        try:
            for p in pending:
                record = Record(p.candidate, p.operator, p.touched)
                self.records[record.id] = record
                self.evaluator.run(p.candidate, rows)
                record.minibatch, record.minibatch_n = self.evaluator.score(record.id, rows), len(rows)
                record.minibatch_objective = self._objective_on(record, rows)
                records.append(record)
            promote = [r for r in records if whole or (r.minibatch_objective or 0.0) > incumbent_mb - self.margin]
            level = [r for r in records
                     if r not in promote and (r.minibatch_objective or 0.0) >= parent_mb - self.margin]
            level.sort(key=lambda r: (-(r.minibatch_objective or 0.0), -self.bandit.estimate(r.operator or ""),
                                      self.evaluator.prompt_tokens_per_row(r.id, rows)))
            promote += level[:top_k]
            for record in records:
                if record in promote and self._can_finish(record, len(rows)):
                    self._full(record)
        except BudgetExceeded:
            for record in records:
                record.status = "promoted" if record.dev is not None else "stopped"
                self._log(record)
            raise
        for record in records:
            if record.dev is not None:
                won = (record.objective or 0.0) > (parent.objective or 0.0)
            else:
                won = (record.minibatch_objective or 0.0) > parent_mb
            self.bandit.record(record.operator or "", 1.0 if won else 0.0)
            record.status = "promoted" if record.dev is not None else "screened_out"
            self._log(record)
        return records

    @staticmethod
    def row_calls(candidate: Candidate, touched: Sequence[str]) -> int:
        """The new calls a row of this child takes, at least one: each micro-prompt it changed, and each one that
        reads their outputs (directly or further down), is asked anew once per sample; the rest repeat the
        parent's requests, which are free. Downstream nodes count because a changed output changes their prompt
        on most rows; repair turns do not (promotion then goes by what the minibatch charged)."""
        names = {address.split(".", 1)[0] for address in touched}
        readers = candidate.flow.dependencies()
        reached = set(names).union(*(nx.descendants(readers, n) for n in names if n in readers))
        nodes = candidate.flow.nodes
        return max(1, sum(node.params.samples for name in reached
                          if isinstance(node := nodes.get(name), MicroPrompt)))

    def _can_finish(self, record: Record, done: int) -> bool:
        """Whether the calls left can score a screened child on the dev rows past its `done` minibatch rows. The
        cost is what its minibatch charged, scaled to those rows (so repair turns and the downstream nodes a change
        reaches count), or its `row_calls` a row when the minibatch charged nothing new. A child that cannot finish
        is journaled as skipped, and a cheaper one after it may still be promoted."""
        rest = len(self.dev_rows) - done
        if rest <= 0:
            return True
        charged = self.evaluator.task_calls.get(record.id, 0)
        need = -(-charged * rest // done) if charged else rest * self.row_calls(record.candidate, record.touched)
        return self._fits(record.candidate, record.operator, need,
                          f"calls that scoring it on {rest} more dev rows takes")

    def _fits(self, candidate: Candidate, operator: str | None, calls: int, what: str) -> bool:
        """Whether `calls` new task-model calls are left for `what`; if not, the candidate is journaled as skipped."""
        reason = self.tracker.shortfall(calls, what)
        if reason is not None:
            self._skip(candidate, operator, reason)
        return reason is None

    def _require_dev(self, done: int = 0, per_row: int = 1) -> None:
        """Raise BudgetExceeded, spending nothing, when the calls left cannot score a candidate on the dev rows it
        has not run (`done` ran already; a row costs at least `per_row` new calls): it could never be chosen."""
        rows = len(self.dev_rows) - done
        if rows > 0:
            self.tracker.require(rows * per_row, f"calls that scoring a candidate on {rows} more dev rows takes")

    def _affordable(self, pending: Sequence[Pending], rows: int, whole: bool) -> list[Pending]:
        """The children, in order, that the calls left can screen on `rows` rows while one of them can still be
        scored on the rest of dev; the others are journaled as skipped and may be proposed again. Raises
        BudgetExceeded when not even one child can reach dev."""
        self._require_dev()
        dev, left = len(self.dev_rows), self.tracker.calls_left()
        if left is None:
            return list(pending)
        kept: list[Pending] = []
        screening, promotion = 0, None
        costs = [self.row_calls(p.candidate, p.touched) for p in pending]
        for p, per_row in zip(pending, costs, strict=True):
            rest = 0 if whole else (dev - rows) * per_row
            cheapest = rest if promotion is None else min(promotion, rest)
            if screening + rows * per_row + cheapest <= left:
                kept.append(p)
                screening, promotion = screening + rows * per_row, cheapest
                continue
            self.seen.discard(p.candidate.id)
            self._skip(p.candidate, p.operator, f"{left} task-model calls left")
        if not kept:
            self._require_dev(per_row=min(costs))
        return kept

    def score_full(self, candidate: Candidate, operator: str, touched: list[str]) -> Record | None:
        """Score a candidate on the full dev set directly (enumeration); None when it was seen before, or when the
        calls left cannot score it at `row_calls` a row (journaled as skipped: a cheaper one may still fit)."""
        if candidate.id in self.seen:
            return None
        self._require_dev()
        rows = len(self.dev_rows)
        if not self._fits(candidate, operator, rows * self.row_calls(candidate, touched),
                          f"calls that scoring it on {rows} dev rows takes"):
            return None
        self.seen.add(candidate.id)
        record = Record(candidate, operator, touched)
        self.records[record.id] = record
        try:
            self._full(record)
        finally:
            record.status = "evaluated" if record.dev is not None else "stopped"
            self._log(record)
        return record

    # --- mutation --------------------------------------------------------------------------------
    def _open(self, mutator: Any, flow: Flow) -> bool:
        try:
            return any(not is_frozen(a, self.frozen) for a in mutator.addresses(flow))
        except Exception:  # noqa: BLE001 - a broken operator is skipped, not fatal
            return False

    def history(self) -> list[tuple[str, str, float]]:
        """(address, text, score) of text edits scored so far, for operators that learn from the trajectory."""
        out = []
        for record in self.records.values():
            m = record.candidate.mutation
            score = record.dev if record.dev is not None else record.minibatch
            if m is not None and isinstance(m.after, str) and score is not None:
                out.append((m.address, m.after, score))
        return out

    def expand(self, parent: Record, n: int) -> list[Pending]:
        """Up to `n` valid new children of `parent`, each from an operator the bandit picks."""
        self.tracker.check_time()
        self._require_dev()
        self.expansions += 1
        operators = [name for name, m in self.mutators.items()
                     if name not in self.disabled and self._open(m, parent.flow)]
        out: list[Pending] = []
        blocked: set[str] = set()
        used: set[str] = set()
        evaluation = None
        attempts = 0
        while len(out) < n and attempts < 3 * n + len(operators):
            names = [o for o in operators if o not in blocked and o not in self.disabled]
            fresh = [o for o in names if o not in used]  # one child per operator while others are left
            if not names:
                break
            name = self.bandit.choose(fresh or names)
            used.add(name)
            mutator = self.mutators[name]
            attempts += 1
            if getattr(mutator, "needs_evaluation", True) and evaluation is None and self.train_rows:
                evaluation = self.evaluator.run(parent.candidate, self._feedback_rows())
            ctx = MutationContext(
                train=self.train, metric=self.metric, evaluation=evaluation, optimizer_model=self.optimizer_model,
                rng=random.Random(f"{self.seed}:{self.expansions}:{parent.id}:{name}:{attempts}"),
                caller=self.optimizer_caller, history=self.history(), models=self.models, frozen=self.frozen,
            )
            exhausted_before = "optimizer" in self.tracker.exhausted
            try:
                proposals = mutator.propose(parent.candidate, ctx, 1)
            except BudgetExceeded:
                if "task" in self.tracker.exhausted:
                    raise
                self.disabled.add(name)
                continue
            except Exception as exc:  # noqa: BLE001 - a failing operator loses this turn, the run goes on
                self.reject(parent, name, f"{type(exc).__name__}: {exc}")
                blocked.add(name)
                continue
            if "optimizer" in self.tracker.exhausted and not exhausted_before:
                self.disabled.add(name)
            if not proposals:
                blocked.add(name)
            for flow, mutation in proposals:
                pending = self._accept(parent, mutator, flow, mutation)
                if pending is None:
                    blocked.add(name)  # invalid or already seen: give the other operators a turn
                else:
                    out.append(pending)
        return out

    def _feedback_rows(self) -> KeyedRows:
        k = min(len(self.train_rows), max(1, self.minibatch))
        return [self.train_rows[i] for i in sorted(self.rng.sample(range(len(self.train_rows)), k))]

    def _accept(self, parent: Record, mutator: Any, flow: Flow, mutation: Mutation) -> Pending | None:
        try:
            flow.compile(caller=self.evaluator.caller)
            touched = check_mutation(parent.flow, flow, mutator.addresses(parent.flow), self.frozen)
            candidate = Candidate(flow, parent=parent.id, mutation=mutation,
                                  generation=parent.candidate.generation + 1)
            cid = candidate.id
        except Exception as exc:  # noqa: BLE001 - invalid children are dropped and journaled
            self.reject(parent, mutator.name, f"{type(exc).__name__}: {exc}")
            self.bandit.record(mutator.name, 0.0)
            return None
        if not touched or cid in self.seen:
            return None
        self.seen.add(cid)
        return Pending(candidate, mutator.name, sorted(touched))

    # --- journal ---------------------------------------------------------------------------------
    def _skip(self, candidate: Candidate, operator: str | None, reason: str) -> None:
        self.journal.append({"event": "skipped", "id": candidate.id, "parent": candidate.parent,
                             "operator": operator, "reason": reason})

    def reject(self, parent: Record, operator: str, reason: str) -> None:
        """Journal a proposal that was invalid."""
        self.journal.append({"event": "rejected", "parent": parent.id, "operator": operator, "reason": reason[:300]})

    def _log(self, record: Record) -> None:
        m = record.candidate.mutation
        total = self.tracker.total
        entry = {
            "event": "candidate", "id": record.id, "parent": record.candidate.parent,
            "generation": record.candidate.generation, "operator": record.operator, "kind": m.kind if m else None,
            "mutation": m.model_dump(mode="json") if m else None, "touched": record.touched,
            "status": record.status, "minibatch": _round(record.minibatch), "minibatch_n": record.minibatch_n,
            "dev": _round(record.dev), "dev_n": len(self.dev_rows) if record.dev is not None else 0,
            "tokens_per_row": _round(record.tokens_per_row), "objective": _round(record.objective),
            "calls": total.task_calls, "optimizer_calls": total.optimizer_calls,
            "tokens": total.task_tokens + total.optimizer_tokens, "elapsed": round(self.tracker.seconds(), 3),
        }
        self.journal.append(json.loads(json.dumps(entry, default=str)))
        if self.on_record is not None:
            self.on_record(record)


def _few_labels(rows: KeyedRows, minibatch: int) -> list[str] | None:
    """Each row's expected output as a label, when dev holds 2 to `minibatch // 2` distinct ones (a class label,
    so a minibatch can hold about two rows of each); None otherwise (free text, lists, many numbers, none)."""
    labels = [json.dumps(row_parts(row)[1], sort_keys=True, default=str) for _, row in rows]
    return labels if 1 < len(set(labels)) <= minibatch // 2 else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
