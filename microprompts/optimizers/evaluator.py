"""Scoring candidates: the whole compiled flow on dataset rows, each (candidate, row) run at most once per run.

Results are kept per (candidate id, row key) and written to ``evaluations.jsonl`` in the run directory with what
they charged to the budget, so a resumed run gets them back without running anything and its budget lines up.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig

from microprompts.evals import EvalResult, Metric, RowResult
from microprompts.evals import evaluate as run_flow
from microprompts.evals.evaluate import row_parts
from microprompts.models import BudgetExceeded, ModelLike, Usage
from microprompts.models.tracing import with_run
from microprompts.optimizers.budget import BudgetedCaller, BudgetTracker, Charge
from microprompts.optimizers.candidate import Candidate
from microprompts.optimizers.cost import Pricing, node_models
from microprompts.optimizers.journal import JsonlFile

__all__ = ["Evaluator", "KeyedRows", "keyed_rows", "row_tokens"]

KeyedRows = list[tuple[str, Any]]


def _digest(value: Any, size: int = 16) -> str:
    blob = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:size]


def keyed_rows(split: str, rows: Sequence[Any]) -> KeyedRows:
    """Rows with stable keys: ``split:id``, or ``split:`` plus a hash of the row's content when it has no id."""
    out: KeyedRows = []
    seen: dict[str, int] = {}
    for row in rows:
        inputs, expected, row_id = row_parts(row)
        base = f"{split}:{row_id}" if row_id is not None else f"{split}:{_digest([inputs, expected])}"
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.append((base if count == 0 else f"{base}#{count}", row))
    return out


def row_tokens(row: RowResult) -> int:
    """The tokens a row's run takes whether cached or not: prompt estimate per call plus reply length / 4."""
    total = 0
    for trace in row.traces:
        if trace.kind != "micro_prompt":
            continue
        total += trace.rendered_tokens * max(1, len(trace.replies)) + sum(len(r) // 4 for r in trace.replies)
    return total


class Evaluator:
    """Runs candidates on rows through a budgeted caller, memoized per (candidate, row) and persisted. Each live run
    is a traced "candidate" run under `config` (its callbacks, tags, metadata and configurable reach every row)."""

    def __init__(
        self,
        metric: Metric,
        model: ModelLike | None,
        caller: BudgetedCaller,
        tracker: BudgetTracker,
        concurrency: int = 4,
        store: Path | None = None,
        resume: bool = False,
        config: RunnableConfig | None = None,
    ) -> None:
        self.metric = metric
        self.config = config
        self.model = model
        self.caller = caller
        self.tracker = tracker
        self.concurrency = concurrency
        self._memo: dict[tuple[str, str], RowResult] = {}
        self._file = JsonlFile(store, resume)
        self._stored = {rec["key"]: rec for rec in self._file.existing}
        self.live_runs = 0  # evaluations that ran the flow in this process
        self.replayed_runs = 0  # evaluations taken back from the run directory
        self.task_calls: dict[str, int] = {}  # task-model calls each candidate's runs charged (replays included)
        self.pricing: Pricing | None = None  # prices per model (the optimizer sets them): cost is priced, not tokens
        self._models: dict[str, dict[str, str]] = {}  # per candidate: the model each micro-prompt runs on

    def has(self, candidate_id: str, rows: KeyedRows) -> bool:
        """True when every row of `rows` was already run for this candidate."""
        return all((candidate_id, key) in self._memo for key, _ in rows)

    def run(self, candidate: Candidate, rows: KeyedRows) -> EvalResult:
        """The candidate's results on `rows`, running only rows it has not run yet; raises BudgetExceeded
        (keeping nothing of the interrupted run) when the budget runs out."""
        cid = candidate.id
        missing = [(key, row) for key, row in rows if (cid, key) not in self._memo]
        if missing:
            record_key = f"{cid}|{_digest([k for k, _ in missing], 24)}"
            stored = self._stored.get(record_key)
            if stored is not None:
                charge = Charge.from_json(stored["charge"])
                self.tracker.replay(charge)
                results = [RowResult.model_validate(r) for r in stored["results"]]
                self.replayed_runs += 1
            else:
                results, charge = self._run_live(candidate, missing, record_key)
            self.task_calls[cid] = self.task_calls.get(cid, 0) + charge.task_calls
            models = self.models_of(candidate)
            for (key, _), result in zip(missing, results, strict=True):
                self._memo[(cid, key)] = result
                if self.pricing is not None:
                    self.pricing.observe(result, models)
        return self.result(cid, rows)

    def _run_live(self, candidate: Candidate, missing: KeyedRows, record_key: str) -> tuple[list[RowResult], Charge]:
        self.tracker.check_time()
        mutation = candidate.mutation
        config = with_run(
            self.config,
            "candidate",
            candidate=candidate.id,
            parent=candidate.parent,
            operator=mutation.operator if mutation is not None else None,
            address=mutation.address if mutation is not None else None,
        )
        with self.tracker.scope() as charge:
            evaluation = run_flow(
                candidate.flow,
                [row for _, row in missing],
                self.metric,
                model=self.model,
                caller=self.caller,
                concurrency=self.concurrency,
                config=config,
            )
        if "task" in self.tracker.exhausted and not self.tracker.exempt:
            raise BudgetExceeded(f"{self.tracker.reason or 'the budget is spent'} (while scoring {candidate.id})")
        self.live_runs += 1
        self._file.append(
            {
                "key": record_key,
                "candidate": candidate.id,
                "rows": [k for k, _ in missing],
                "results": [r.model_dump(mode="json") for r in evaluation.rows],
                "charge": charge.to_json(),
            }
        )
        return evaluation.rows, charge

    def result(self, candidate_id: str, rows: KeyedRows) -> EvalResult:
        """The memoized results of a candidate on `rows` as one EvalResult (rows in the order given)."""
        picked = [self._memo[(candidate_id, key)].model_copy(update={"index": i}) for i, (key, _) in enumerate(rows)]
        usage = Usage()
        for r in picked:
            usage = usage + r.usage
        n = len(picked)
        return EvalResult(
            score=sum(r.score for r in picked) / n if n else 0.0,
            n=n,
            errors=sum(1 for r in picked if r.error),
            rows=picked,
            usage=usage,
            seconds=sum(r.seconds for r in picked),
        )

    def score(self, candidate_id: str, rows: KeyedRows) -> float:
        """Mean score of already-run rows."""
        return self.result(candidate_id, rows).score if rows else 0.0

    def prompt_tokens_per_row(self, candidate_id: str, rows: KeyedRows) -> float:
        """Mean size of the prompts a row renders (one per micro-prompt run), whatever the model replied: a cost
        that a retried fault or a repair turn does not change."""
        if not rows:
            return 0.0
        return sum(
            t.rendered_tokens
            for key, _ in rows
            for t in self._memo[(candidate_id, key)].traces
            if t.kind == "micro_prompt"
        ) / len(rows)

    def tokens_per_row(self, candidate_id: str, rows: KeyedRows) -> float:
        """Mean tokens a row takes (cache-independent estimate) over already-run rows."""
        if not rows:
            return 0.0
        return sum(row_tokens(self._memo[(candidate_id, key)]) for key, _ in rows) / len(rows)

    def models_of(self, candidate: Candidate) -> dict[str, str]:
        """The model spec each micro-prompt of the candidate runs on (its own, else the task model's)."""
        if candidate.id not in self._models:
            task = self.pricing.task if self.pricing is not None else "task model"
            self._models[candidate.id] = node_models(candidate.flow, task)
        return self._models[candidate.id]

    def row_cost(self, candidate_id: str, row: RowResult) -> float:
        """What one of the candidate's rows cost: its tokens (`row_tokens`), or with prices, its priced cost."""
        if self.pricing is None:
            return row_tokens(row)
        return self.pricing.row_cost(row, self._models.get(candidate_id, {}))

    def cost_per_row(self, candidate_id: str, rows: KeyedRows) -> float:
        """Mean cost of already-run rows, what the objective weighs: tokens per row (exactly `tokens_per_row`), or
        with prices, dollars (or seconds) per row."""
        if self.pricing is None:
            return self.tokens_per_row(candidate_id, rows)
        if not rows:
            return 0.0
        return sum(self.row_cost(candidate_id, self._memo[(candidate_id, key)]) for key, _ in rows) / len(rows)
