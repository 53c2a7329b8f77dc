"""What a finished search leaves: the final figures (the test split, outside the budget), the usage, the artifacts in
the run directory (``best.json``, ``summary.json``, ``report.html``, and ``pareto/``: every candidate on the front of
dev score against cost per row as an artifact, with ``pareto/index.json``) and the `OptimizeResult`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from microprompts._io import atomic_write_text
from microprompts.evals import EvalResult
from microprompts.models import CallCache
from microprompts.models.usage import Usage, UsageMeter
from microprompts.optimizers.budget import BudgetedCaller
from microprompts.optimizers.cost import CostUnit, cost_front
from microprompts.optimizers.engine import Engine
from microprompts.optimizers.evaluator import KeyedRows
from microprompts.optimizers.result import OptimizeResult
from microprompts.optimizers.search import Search

__all__ = ["PARETO_DIR", "failing_rows", "finish_run", "metric_usage", "save_front"]

FAILURES_SHOWN = 5
PARETO_DIR = "pareto"
_ARTIFACT = re.compile(r"^[0-9a-f]{16}\.json$")  # a front member's file: its candidate id


def failing_rows(evaluation: EvalResult, keys: list[str], limit: int = FAILURES_SHOWN) -> list[dict[str, Any]]:
    """The `limit` worst rows of an evaluation that did not score fully (errors first, then lowest score, in row
    order among equals), as plain dicts: row key, inputs, expected, prediction, score, metric feedback, error."""
    failing = [(key, r) for key, r in zip(keys, evaluation.rows, strict=True) if r.error or r.score < 1.0]
    failing.sort(key=lambda kr: (kr[1].error is None, kr[1].score))
    return [
        {
            "row": key,
            "inputs": r.inputs,
            "expected": r.expected,
            "prediction": r.prediction,
            "score": r.score,
            "feedback": r.feedback,
            "error": r.error,
        }
        for key, r in failing[:limit]
    ]


def metric_usage(metric: Any) -> Usage | None:
    """What a metric that calls a model (``llm_judge``: it has a ``meter``) has spent so far; None for others."""
    meter = getattr(metric, "meter", None)
    return meter.snapshot() if isinstance(meter, UsageMeter) else None


def _best_failures(engine: Engine) -> list[dict[str, Any]]:
    """The best candidate's failing dev rows, from the evaluator's memo (it was scored on all of dev: no call)."""
    dev = engine.rows.dev
    best = engine.incumbent.id
    if not dev or not engine.evaluator.has(best, dev):
        return []
    return failing_rows(engine.evaluator.result(best, dev), [key for key, _ in dev])


def save_front(engine: Engine, front: list[dict[str, Any]], unit: CostUnit, folder: Path) -> None:
    """Write each front member as an artifact ``<id>.json`` in `folder` (loadable with `Flow.load`, servable) and
    ``index.json`` (id, dev score, cost per row, the model per node); drop members of an earlier run's front. Each
    front entry gets its ``artifact`` path, relative to the run directory."""
    folder.mkdir(parents=True, exist_ok=True)
    best = engine.incumbent.id
    for entry in front:
        engine.records[entry["id"]].flow.save(folder / f"{entry['id']}.json")
        entry["artifact"] = f"{folder.name}/{entry['id']}.json"
    members = {f"{e['id']}.json" for e in front}
    for stale in folder.iterdir():
        if _ARTIFACT.match(stale.name) and stale.name not in members:
            stale.unlink(missing_ok=True)
    index = {
        "cost_unit": unit,
        "best_id": best,
        "front": [
            {
                "id": e["id"],
                "dev": e["score"],
                "cost_per_row": e["cost_per_row"],
                "tokens_per_row": e["tokens_per_row"],
                "objective": e["objective"],
                "best": e["id"] == best,
                "artifact": e["artifact"],
                "models": e["models"],
            }
            for e in front
        ],
    }
    atomic_write_text(folder / "index.json", json.dumps(index, indent=2, default=str) + "\n")


def finish_run(
    engine: Engine,
    strategy: Search,
    stopped: str | None,
    test_rows: KeyedRows | None,
    run_path: Path | None,
    cache: CallCache,
    opt_caller: BudgetedCaller,
    metric_before: Usage | None = None,
) -> OptimizeResult:
    """Final figures (test split outside the budget), artifacts and the result; closes the call cache."""
    evaluator, tracker = engine.evaluator, engine.tracker
    best, baseline = engine.incumbent, engine.baseline
    search_calls = tracker.total.task_calls  # what the search spent, before the test split (outside the budget)
    test_baseline = test_best = None
    if test_rows:
        with tracker.exempted():
            test_baseline = evaluator.run(baseline.candidate, test_rows).score
            test_best = evaluator.run(best.candidate, test_rows).score
    dev = engine.rows.dev
    points = [
        {
            "id": r.id,
            "score": r.dev,
            "tokens_per_row": r.tokens_per_row,
            "objective": r.objective,
            "cost_per_row": evaluator.cost_per_row(r.id, dev),
        }
        for r in engine.scored
    ]
    front = [{**p, "models": evaluator.models_of(engine.records[p["id"]].candidate)} for p in cost_front(points)]
    unit: CostUnit = evaluator.pricing.unit if evaluator.pricing is not None else "tokens"
    tracker.phases.stop()  # the run's wall time, the test split included; writing the artifacts is not in it
    task, opt = evaluator.caller.meter.snapshot(), opt_caller.meter.snapshot()
    usage = {
        "calls": task.calls,
        "cached_calls": task.cached_calls,
        "prompt_tokens": task.prompt_tokens,
        "completion_tokens": task.completion_tokens,
        "optimizer_calls": opt.calls,
        "optimizer_cached_calls": opt.cached_calls,
        "tokens": task.tokens + opt.tokens,
        "failures": task.failures + opt.failures,
        "charged_calls": tracker.total.task_calls,
        "search_calls": search_calls,
        "charged_optimizer_calls": tracker.total.optimizer_calls,
        "charged_optimizer_tokens": tracker.total.optimizer_tokens,
        "charged_tokens": tracker.total.task_tokens + tracker.total.optimizer_tokens,
        "seconds": tracker.seconds(),
        "evaluations_run": evaluator.live_runs,
        "evaluations_replayed": evaluator.replayed_runs,
    }
    metric_now = metric_usage(evaluator.metric)
    if metric_before is not None and metric_now is not None:  # a judge's calls: the metric's cost, not the budget's
        spent = metric_now - metric_before
        usage.update(metric_calls=spent.calls, metric_cached_calls=spent.cached_calls, metric_tokens=spent.tokens)
    result = OptimizeResult(
        best=best.flow,
        best_candidate=best.candidate,
        baseline=baseline.candidate,
        baseline_score=baseline.dev or 0.0,
        best_score=best.dev or 0.0,
        test_baseline=test_baseline,
        test_best=test_best,
        history=list(engine.journal.entries),
        pareto=front,
        cost_unit=unit,
        points=points,
        usage=usage,
        search=strategy.describe(),
        stopped=stopped,
        run_dir=run_path,
        operators=engine.bandit.stats(),
        failures=_best_failures(engine),
        time_shares=tracker.phases.shares(),
    )
    if run_path is not None:
        best.flow.save(str(run_path / "best.json"))
        save_front(engine, front, unit, run_path / PARETO_DIR)
        summary = {**result.summary(), "usage": usage, "cost_unit": unit, "pareto": result.pareto}
        atomic_write_text(run_path / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
        result.report()
    cache.close()
    return result
