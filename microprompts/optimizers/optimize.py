"""`optimize`: search over whole flows under a budget, scoring every candidate end to end on dev, and keep the best.

A run directory holds ``run.json`` (what the run is), ``journal.jsonl`` (every candidate), ``evaluations.jsonl``
(every scored row, so nothing is run twice), ``calls.sqlite`` (the call cache), and at the end ``best.json``,
``summary.json`` and ``report.html``. ``resume=True`` retraces the journal from the same seed: recorded
evaluations come back from disk and recorded model calls from the cache, so the run ends as an uninterrupted
one would and pays for no call twice.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from tqdm.auto import tqdm

from microprompts._io import atomic_write_text
from microprompts.evals import Metric, resolve_metric
from microprompts.flows import Flow
from microprompts.models import BudgetExceeded, CallCache, ModelLike, resolve_model
from microprompts.models.spec import model_identity
from microprompts.models.usage import Usage, UsageMeter
from microprompts.optimizers.budget import Budget, BudgetedCaller, BudgetTracker
from microprompts.optimizers.candidate import Record
from microprompts.optimizers.engine import Engine
from microprompts.optimizers.evaluator import Evaluator, KeyedRows, keyed_rows
from microprompts.optimizers.journal import Journal, ResumeError
from microprompts.optimizers.mutators import default_mutators
from microprompts.optimizers.result import OptimizeResult
from microprompts.optimizers.search import Enumerate, Search, make_search
from microprompts.optimizers.selection import Objective, pareto_front
from microprompts.optimizers.space import SearchSpace, SpaceChoice

__all__ = ["optimize"]

KINDS = ("content", "structure", "graph", "parameters")


def _digest(keys: KeyedRows | None) -> str | None:
    if keys is None:
        return None
    return hashlib.sha256(json.dumps([k for k, _ in keys]).encode()).hexdigest()[:16]


def _model_label(model: ModelLike | None) -> str | None:
    if model is None or isinstance(model, str):
        return model
    return model_identity(model)


def _open_cache(run_dir: Path | None) -> CallCache:
    if run_dir is not None:
        return CallCache(run_dir / "calls.sqlite")
    if os.environ.get("MICROPROMPTS_CACHE", "").lower() in {"off", "0", "none"}:
        return CallCache(":memory:")
    return CallCache()


def _check_run(run_dir: Path, fingerprint: dict[str, Any], resume: bool) -> None:
    """On resume, refuse a run directory that holds a different run; otherwise record this run's identity."""
    path = run_dir / "run.json"
    if resume and path.is_file():
        recorded = json.loads(path.read_text(encoding="utf-8"))
        differs = sorted(k for k in set(recorded) | set(fingerprint) if recorded.get(k) != fingerprint.get(k))
        if differs:
            raise ResumeError(f"cannot resume {run_dir}: it holds a run with a different {', '.join(differs)}")
        return
    atomic_write_text(path, json.dumps(fingerprint, indent=2, sort_keys=True, default=str) + "\n")


class _Progress:
    """A tqdm bar on stderr: best objective, calls and tokens so far."""

    def __init__(self, tracker: BudgetTracker, total: int | None, name: str, enabled: bool) -> None:
        self.tracker = tracker
        self.best: float | None = None
        self.bar = tqdm(total=total, desc=f"optimize {name}", unit="call", disable=not enabled, leave=False)

    def __call__(self, record: Record) -> None:
        if record.objective is not None and (self.best is None or record.objective > self.best):
            self.best = record.objective
        t = self.tracker.total
        self.bar.n = t.task_calls
        self.bar.set_postfix(best=f"{self.best:.3f}" if self.best is not None else "-", calls=t.task_calls,
                             tokens=t.task_tokens + t.optimizer_tokens, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def optimize(
    flow: Flow | SearchSpace,
    *,
    train: Sequence[Any] | None = None,
    dev: Sequence[Any],
    test: Sequence[Any] | None = None,
    metric: Metric | str,
    search: str | Search = "beam",
    budget: Budget | None = None,
    model: ModelLike | None = None,
    optimizer_model: ModelLike | None = None,
    models: Sequence[str] = (),
    frozen: Sequence[str] = (),
    kinds: Sequence[str] | None = None,
    run_dir: str | Path | None = None,
    seed: int = 0,
    resume: bool = False,
    concurrency: int = 4,
    minibatch: int = 8,
    margin: float = 0.0,
    cost_weight: float = 0.0,
    progress: bool = True,
    mutators: Sequence[Any] | None = None,
    before_call: Callable[[], None] | None = None,
) -> OptimizeResult:
    """Optimize `flow` (or a SearchSpace) for `metric` on `dev`, under `budget`; see the module docstring.

    `model` is the task model (nodes without their own); `optimizer_model` enables the model-based mutators;
    `models` are specs a node may switch to; `frozen` are address patterns never changed (``reply.task``);
    `kinds` limits mutation kinds; `minibatch` dev rows screen each child before the full dev set; the objective
    is ``score - cost_weight * tokens_per_row``; `before_call` runs before every paid model call (raise to stop).
    """
    space = flow if isinstance(flow, SearchSpace) else None
    base: Flow = space.flow if space is not None else flow  # type: ignore[assignment]
    if isinstance(metric, str):
        metric = resolve_metric(metric)
    train_list, dev_list = list(train or []), list(dev or [])
    if not dev_list:
        raise ValueError("optimize needs dev rows: selection is on dev")
    strategy = make_search(search, space)
    unknown = sorted(set(kinds or ()) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown mutation kind(s) {unknown}: expected some of {list(KINDS)}")
    run_path = Path(run_dir) if run_dir is not None else None
    if resume and run_path is None:
        raise ValueError("resume=True needs a run_dir")
    opt_model: BaseChatModel | None = resolve_model(optimizer_model) if optimizer_model is not None else None
    ops = list(mutators) if mutators is not None else default_mutators(opt_model is not None)
    if space is not None and not isinstance(strategy, Enumerate):
        ops.append(SpaceChoice(space))
    if kinds:
        ops = [m for m in ops if m.kind in kinds]
    train_rows, dev_rows = keyed_rows("train", train_list), keyed_rows("dev", dev_list)
    test_rows = keyed_rows("test", list(test)) if test else None
    budget = budget or Budget()
    fingerprint = {
        "flow": base.content_hash(), "seed": seed, "train": _digest(train_rows), "dev": _digest(dev_rows),
        "test": _digest(test_rows), "search": strategy.describe(), "minibatch": minibatch, "margin": margin,
        "cost_weight": cost_weight, "mutators": [m.name for m in ops], "frozen": list(frozen),
        "models": list(models), "model": _model_label(model), "optimizer_model": _model_label(optimizer_model),
    }
    if callable(getattr(metric, "fingerprint", None)):  # a metric that calls a model (llm_judge): its rubric too
        fingerprint["metric"] = json.loads(json.dumps(metric.fingerprint(), sort_keys=True, default=str))
    if run_path is not None:
        run_path.mkdir(parents=True, exist_ok=True)
        _check_run(run_path, fingerprint, resume)
    cache = _open_cache(run_path)
    metric_before = _metric_usage(metric)
    tracker = BudgetTracker(budget)
    task_caller = BudgetedCaller(cache, tracker, "task", before_call)
    opt_caller = BudgetedCaller(cache, tracker, "optimizer", before_call)
    journal = Journal(run_path / "journal.jsonl" if run_path else None, resume)
    tracker.seconds_offset = journal.last_elapsed()
    evaluator = Evaluator(metric, model, task_caller, tracker, concurrency,
                          run_path / "evaluations.jsonl" if run_path else None, resume)
    bar = _Progress(tracker, budget.calls, base.name, progress)
    try:
        try:
            engine = Engine(
                flow=base, train=train_list, train_rows=train_rows, dev_rows=dev_rows, metric=metric, mutators=ops,
                evaluator=evaluator, tracker=tracker, journal=journal, seed=seed, minibatch=minibatch,
                margin=margin, objective=Objective(cost_weight), optimizer_caller=opt_caller,
                optimizer_model=opt_model, models=models, frozen=frozen, on_record=bar,
            )
        except BudgetExceeded as exc:
            raise BudgetExceeded(
                f"the budget ({budget.describe()}) ran out before the baseline was scored on dev ({exc})"
            ) from exc
        engine.space = space
        stopped: str | None = None
        try:
            strategy.run(engine)
        except BudgetExceeded as exc:
            stopped = f"stopped by the budget: {exc}"
    finally:
        bar.close()
    return _finish(engine, evaluator, tracker, task_caller, opt_caller, test_rows, strategy, stopped, run_path,
                   cache, metric_before)


def _metric_usage(metric: Any) -> Usage | None:
    """What a metric that calls a model (``llm_judge``: it has a ``meter``) has spent so far; None for others."""
    meter = getattr(metric, "meter", None)
    return meter.snapshot() if isinstance(meter, UsageMeter) else None


def _finish(
    engine: Engine, evaluator: Evaluator, tracker: BudgetTracker, task_caller: BudgetedCaller,
    opt_caller: BudgetedCaller, test_rows: KeyedRows | None, strategy: Search, stopped: str | None,
    run_path: Path | None, cache: CallCache, metric_before: Usage | None = None,
) -> OptimizeResult:
    """Final figures (test split outside the budget), artifacts and the result."""
    best, baseline = engine.incumbent, engine.baseline
    search_calls = tracker.total.task_calls  # what the search spent, before the test split (outside the budget)
    test_baseline = test_best = None
    if test_rows:
        with tracker.exempted():
            test_baseline = evaluator.run(baseline.candidate, test_rows).score
            test_best = evaluator.run(best.candidate, test_rows).score
    points = [{"id": r.id, "score": r.dev, "tokens_per_row": r.tokens_per_row, "objective": r.objective}
              for r in engine.scored]
    task, opt = task_caller.meter.snapshot(), opt_caller.meter.snapshot()
    usage = {
        "calls": task.calls, "cached_calls": task.cached_calls, "prompt_tokens": task.prompt_tokens,
        "completion_tokens": task.completion_tokens, "optimizer_calls": opt.calls,
        "optimizer_cached_calls": opt.cached_calls, "tokens": task.tokens + opt.tokens,
        "failures": task.failures + opt.failures, "charged_calls": tracker.total.task_calls,
        "search_calls": search_calls,
        "charged_optimizer_calls": tracker.total.optimizer_calls,
        "charged_tokens": tracker.total.task_tokens + tracker.total.optimizer_tokens, "seconds": tracker.seconds(),
        "evaluations_run": evaluator.live_runs, "evaluations_replayed": evaluator.replayed_runs,
    }
    metric_now = _metric_usage(engine.metric)
    if metric_before is not None and metric_now is not None:  # a judge's calls: the metric's cost, not the budget's
        spent = metric_now - metric_before
        usage.update(metric_calls=spent.calls, metric_cached_calls=spent.cached_calls, metric_tokens=spent.tokens)
    result = OptimizeResult(
        best=best.flow, best_candidate=best.candidate, baseline=baseline.candidate,
        baseline_score=baseline.dev or 0.0, best_score=best.dev or 0.0, test_baseline=test_baseline,
        test_best=test_best, history=list(engine.journal.entries), pareto=pareto_front(points), points=points,
        usage=usage, search=strategy.describe(), stopped=stopped, run_dir=run_path, operators=engine.bandit.stats(),
    )
    if run_path is not None:
        best.flow.save(str(run_path / "best.json"))
        atomic_write_text(run_path / "summary.json",
                          json.dumps({**result.summary(), "usage": usage, "pareto": result.pareto},
                                     indent=2, default=str) + "\n")
        result.report()
    cache.close()
    return result
