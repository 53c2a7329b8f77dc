"""`Optimizer` and `optimize`: search over whole flows under a budget, scoring every candidate end to end on dev, and
keep the best.

An `Optimizer` holds the settings (how to search) apart from the data (what to optimize, on which rows, for which
metric), as DSPy's optimizers do; `optimize(flow, ..., **settings)` is the one-call form. A run directory holds
``run.json`` (what the run is), ``journal.jsonl`` (every candidate), ``evaluations.jsonl`` (every scored row, so
nothing is run twice), ``calls.sqlite`` (the call cache), and at the end ``best.json``, ``summary.json`` and
``report.html``. ``resume=True`` retraces the journal from the same seed: recorded evaluations come back from disk
and recorded model calls from the cache, so the run ends as an uninterrupted one would and pays for no call twice.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from tqdm.auto import tqdm

from microprompts._io import atomic_write_text
from microprompts.evals import Metric, resolve_metric
from microprompts.evals.executor import Executor
from microprompts.evals.executors import as_executor
from microprompts.flows import Flow
from microprompts.models import BudgetExceeded, CallCache, ModelLike, resolve_model
from microprompts.models.spec import model_identity
from microprompts.models.tracing import traced_run
from microprompts.optimizers.budget import Budget, BudgetedCaller, BudgetTracker
from microprompts.optimizers.candidate import Record
from microprompts.optimizers.engine import Engine, EngineRows, EngineSettings, Proposers
from microprompts.optimizers.evaluator import Evaluator, KeyedRows, keyed_rows
from microprompts.optimizers.journal import Journal, ResumeError
from microprompts.optimizers.mutators import Mutator, default_mutators
from microprompts.optimizers.outcome import finish_run, metric_usage
from microprompts.optimizers.result import OptimizeResult
from microprompts.optimizers.search import Enumerate, Search, make_search
from microprompts.optimizers.selection import Objective
from microprompts.optimizers.space import SearchSpace, SpaceChoice

__all__ = ["Optimizer", "optimize"]

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
        try:
            recorded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ResumeError(
                f"cannot resume {run_dir}: {path} cannot be read ({exc}); start the run over without "
                "--resume, or in another directory"
            ) from exc
        if not isinstance(recorded, dict):
            raise ResumeError(f"cannot resume {run_dir}: {path} does not hold a run's settings")
        differs = sorted(k for k in set(recorded) | set(fingerprint) if recorded.get(k) != fingerprint.get(k))
        if differs:
            raise ResumeError(f"cannot resume {run_dir}: it holds a run with a different {', '.join(differs)}")
        return
    atomic_write_text(path, json.dumps(fingerprint, indent=2, sort_keys=True, default=str) + "\n")


def _run_lock(run_dir: Path) -> FileLock:
    """The run directory's lock, taken now: a second run in the same directory gets one clear error instead of
    interleaving its journal with the first one's."""
    lock = FileLock(str(run_dir / ".lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise RunLockedError(
            f"another optimize is running in {run_dir} (it holds {run_dir / '.lock'}): wait for it "
            "to finish, or choose another --out"
        ) from None
    return lock


class RunLockedError(RuntimeError):
    """Another process is optimizing in the same run directory."""


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
        self.bar.set_postfix(
            best=f"{self.best:.3f}" if self.best is not None else "-",
            calls=t.task_calls,
            tokens=t.task_tokens + t.optimizer_tokens,
            refresh=False,
        )
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


@dataclass(frozen=True, kw_only=True)
class Optimizer:
    """How to optimize a flow, apart from what to optimize: `run(flow, dev=..., metric=...)` applies it.

    `search` is a strategy or its name; `model` is the task model (nodes without their own); `optimizer_model`
    enables the model-based mutators; `models` are specs a node may switch to; `frozen` are address patterns never
    changed (``reply.task``); `kinds` limits mutation kinds; `minibatch` dev rows screen each child before the full
    dev set (promoted when within `margin` of the best); the objective is ``score - cost_weight * tokens_per_row``;
    `mutators` replaces the default operators; `before_call` runs before every paid model call (raise to stop).
    `executor` is where the task model runs (``local``, ``ray``, ``ray:ADDRESS`` or an Executor) with `replicas`
    copies of it; the search, journal, cache and budget stay in this process whichever it is.
    """

    search: str | Search = "beam"
    budget: Budget | None = None
    model: ModelLike | None = None
    optimizer_model: ModelLike | None = None
    models: Sequence[str] = ()
    frozen: Sequence[str] = ()
    kinds: Sequence[str] | None = None
    seed: int = 0
    concurrency: int = 4
    minibatch: int = 8
    margin: float = 0.0
    cost_weight: float = 0.0
    progress: bool = True
    mutators: Sequence[Mutator] | None = None
    before_call: Callable[[], None] | None = None
    executor: str | Executor = "local"
    replicas: int | None = None

    def run(
        self,
        flow: Flow | SearchSpace,
        *,
        train: Sequence[Any] | None = None,
        dev: Sequence[Any],
        test: Sequence[Any] | None = None,
        metric: Metric | str,
        run_dir: str | Path | None = None,
        resume: bool = False,
        config: RunnableConfig | None = None,
    ) -> OptimizeResult:
        """Optimize `flow` (or a SearchSpace) for `metric` on `dev`; `train` feeds the mutators, `test` is scored
        at the end outside the budget; `run_dir` keeps the run (see the module docstring), `resume` continues it.

        `config` is a LangChain `RunnableConfig` (callbacks, tags, metadata, `configurable`): the run is one traced
        "optimize" run holding a "candidate" run per evaluation, a "row" run per row and the flow's runs below it;
        every flow run gets `config`'s callbacks, tags, metadata and configurable."""
        space = flow if isinstance(flow, SearchSpace) else None
        base = flow.flow if isinstance(flow, SearchSpace) else flow
        if isinstance(metric, str):
            metric = resolve_metric(metric)
        train_list, dev_list = list(train or []), list(dev or [])
        if not dev_list:
            raise ValueError("optimize needs dev rows: selection is on dev")
        strategy = make_search(self.search, space)
        unknown = sorted(set(self.kinds or ()) - set(KINDS))
        if unknown:
            raise ValueError(f"unknown mutation kind(s) {unknown}: expected some of {list(KINDS)}")
        run_path = Path(run_dir) if run_dir is not None else None
        if resume and run_path is None:
            raise ValueError("resume=True needs a run_dir")
        opt_model = resolve_model(self.optimizer_model) if self.optimizer_model is not None else None
        ops = self._operators(opt_model, space, strategy)
        rows = EngineRows(dev=keyed_rows("dev", dev_list), train=keyed_rows("train", train_list))
        test_rows = keyed_rows("test", list(test)) if test else None
        budget = self.budget or Budget()
        fingerprint = self._fingerprint(base, strategy, ops, rows, test_rows)
        rubric = getattr(metric, "fingerprint", None)
        if callable(rubric):  # a metric that calls a model (llm_judge): its rubric too
            fingerprint["metric"] = json.loads(json.dumps(rubric(), sort_keys=True, default=str))
        executor = as_executor(self.executor, self.replicas)  # a bad name or a missing Ray fails before any work
        with ExitStack() as held:
            if not isinstance(self.executor, Executor):
                held.enter_context(executor)  # made here, stopped here; a given Executor is its owner's to close
            inputs = {"flow": base.name, "dev": len(dev_list), "train": len(train_list), "search": strategy.describe()}
            traced = held.enter_context(traced_run(config, "optimize", inputs))
            if run_path is not None:
                run_path.mkdir(parents=True, exist_ok=True)
                held.enter_context(_run_lock(run_path))  # one run at a time in a directory
                _check_run(run_path, fingerprint, resume)
            cache = _open_cache(run_path)
            metric_before = metric_usage(metric)
            tracker = BudgetTracker(budget)
            task_caller = BudgetedCaller(cache, tracker, "task", self.before_call)
            opt_caller = BudgetedCaller(cache, tracker, "optimizer", self.before_call)
            journal = Journal(run_path / "journal.jsonl" if run_path else None, resume)
            tracker.seconds_offset = journal.last_elapsed()
            evaluator = Evaluator(
                metric,
                executor.bind(self.model),
                task_caller,
                tracker,
                executor.workers(self.concurrency),
                run_path / "evaluations.jsonl" if run_path else None,
                resume,
                traced.config,
            )
            bar = _Progress(tracker, budget.calls, base.name, self.progress)
            engine = Engine(
                base,
                rows=rows,
                evaluator=evaluator,
                journal=journal,
                space=space,
                on_record=bar,
                proposers=Proposers(mutators=ops, model=opt_model, caller=opt_caller),
                settings=EngineSettings(
                    seed=self.seed,
                    minibatch=self.minibatch,
                    margin=self.margin,
                    objective=Objective(self.cost_weight),
                    frozen=tuple(self.frozen),
                    models=tuple(self.models),
                ),
            )
            stopped: str | None = None
            try:
                try:
                    engine.start()
                except BudgetExceeded as exc:
                    raise BudgetExceeded(
                        f"the budget ({budget.describe()}) ran out before the baseline was scored on dev ({exc})"
                    ) from exc
                try:
                    strategy.run(engine)
                except BudgetExceeded as exc:
                    stopped = f"stopped by the budget: {exc}"
            finally:
                bar.close()
            result = finish_run(engine, strategy, stopped, test_rows, run_path, cache, opt_caller, metric_before)
            traced.outputs = {
                "best": result.best_candidate.id,
                "score": result.best_score,
                "baseline_score": result.baseline_score,
                "stopped": stopped,
            }
            return result

    def _operators(self, opt_model: BaseChatModel | None, space: SearchSpace | None, strategy: Search) -> list[Mutator]:
        """The mutators this run uses: the given or default ones, a space's choices unless enumerating it, by kind."""
        ops = list(self.mutators) if self.mutators is not None else default_mutators(opt_model is not None)
        if space is not None and not isinstance(strategy, Enumerate):
            ops.append(SpaceChoice(space))
        if self.kinds:
            ops = [m for m in ops if m.kind in self.kinds]
        return ops

    def _fingerprint(
        self, base: Flow, strategy: Search, ops: Sequence[Mutator], rows: EngineRows, test_rows: KeyedRows | None
    ) -> dict[str, Any]:
        """What the run is (``run.json``): `--resume` refuses a run directory whose fingerprint differs."""
        return {
            "flow": base.content_hash(),
            "seed": self.seed,
            "train": _digest(rows.train),
            "dev": _digest(rows.dev),
            "test": _digest(test_rows),
            "search": strategy.describe(),
            "minibatch": self.minibatch,
            "margin": self.margin,
            "cost_weight": self.cost_weight,
            "mutators": [m.name for m in ops],
            "frozen": list(self.frozen),
            "models": list(self.models),
            "model": _model_label(self.model),
            "optimizer_model": _model_label(self.optimizer_model),
        }


def optimize(
    flow: Flow | SearchSpace,
    *,
    train: Sequence[Any] | None = None,
    dev: Sequence[Any],
    test: Sequence[Any] | None = None,
    metric: Metric | str,
    run_dir: str | Path | None = None,
    resume: bool = False,
    config: RunnableConfig | None = None,
    **settings: Any,
) -> OptimizeResult:
    """`Optimizer(**settings).run(flow, ...)` in one call: optimize `flow` (or a SearchSpace) for `metric` on `dev`
    under `budget`; the keyword `settings` are Optimizer's (search, budget, model, seed, minibatch, ...); `config` is
    a LangChain `RunnableConfig` for every flow run and the run's trace (see `Optimizer.run`)."""
    return Optimizer(**settings).run(
        flow, train=train, dev=dev, test=test, metric=metric, run_dir=run_dir, resume=resume, config=config
    )
