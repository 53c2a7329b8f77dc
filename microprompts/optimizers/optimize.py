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
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from tqdm.auto import tqdm

from microprompts.evals import Metric, resolve_metric
from microprompts.evals.executor import Executor
from microprompts.evals.executors import as_executor
from microprompts.flows import Flow
from microprompts.models import BudgetExceeded, ModelLike, resolve_model
from microprompts.models.spec import model_identity, resolve_configured
from microprompts.models.tracing import traced_run
from microprompts.nodes import MicroPrompt
from microprompts.optimizers.budget import Budget, BudgetedCaller, BudgetTracker
from microprompts.optimizers.candidate import Record
from microprompts.optimizers.cost import Price, Pricing
from microprompts.optimizers.engine import Engine, EngineRows, EngineSettings, Proposers
from microprompts.optimizers.evaluator import Evaluator, KeyedRows, keyed_rows
from microprompts.optimizers.journal import Journal
from microprompts.optimizers.mutators import Mutator, default_mutators
from microprompts.optimizers.outcome import finish_run, metric_usage
from microprompts.optimizers.result import OptimizeResult
from microprompts.optimizers.run_dir import RunLockedError, check_run, open_cache, run_lock
from microprompts.optimizers.search import Enumerate, Search, make_search
from microprompts.optimizers.selection import Objective
from microprompts.optimizers.space import SearchSpace, SpaceChoice

__all__ = ["NO_OPTIMIZER_MODEL", "TASK_MODEL", "Optimizer", "RunLockedError", "no_optimizer_model", "optimize"]

KINDS = ("content", "structure", "graph", "parameters")
NO_OPTIMIZER_MODEL = "none"  # optimizer_model="none": no optimizer model, only the no-model operators
TASK_MODEL = "task model"  # what run.json records when the task model serves as the optimizer model
_DEFAULTS = EngineSettings()


def no_optimizer_model(spec: ModelLike | None) -> bool:
    """Whether `spec` says "no optimizer model" (the string ``none``, any case)."""
    return isinstance(spec, str) and spec.strip().lower() == NO_OPTIMIZER_MODEL


def _task_model(base: Flow, bound: ModelLike | None, config: RunnableConfig | None) -> BaseChatModel:
    """The model the flow's micro-prompts run on, as the rows call it: the given task model (bound to the executor),
    else the run's ``configurable.model``, else the first micro-prompt's own model, else ``local`` (the Runtime's
    order), so the optimizer model defaults to the very object the task calls go to."""
    if bound is not None:
        return resolve_model(bound)
    configured = ((config or {}).get("configurable") or {}).get("model")
    if isinstance(configured, BaseChatModel):
        return configured
    if isinstance(configured, str) and configured.strip():
        return resolve_configured(configured)
    for node in base.nodes.values():
        if isinstance(node, MicroPrompt) and node.params.model is not None:
            return resolve_model(node.params.model)
    return resolve_model(None)


def _digest(keys: KeyedRows | None) -> str | None:
    if keys is None:
        return None
    return hashlib.sha256(json.dumps([k for k, _ in keys]).encode()).hexdigest()[:16]


def _model_label(model: ModelLike | None) -> str | None:
    if model is None or isinstance(model, str):
        return model
    return model_identity(model)


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

    `search` is a strategy or its name; `model` is the task model (nodes without their own); `optimizer_model` is
    the model the model-based mutators ask: unset, the task model serves (as the peers' optimizers do, said once on
    stderr), ``"none"`` leaves those mutators out; `models` are specs a node may switch to; `frozen` are address
    patterns never changed (``reply.task``); `kinds` limits mutation kinds; `minibatch` dev rows screen each child
    before the full dev set (promoted when within `margin` of the best); the objective is
    ``score - cost_weight * cost_per_row``, the cost being tokens per row, or with `prices` (spec -> `Price`, its
    fields as a dict, or ``"0.15/0.6"`` / ``"0.0001s"``) dollars per row (seconds when every price is ``"1s"``; a
    spec without a price costs 0; `model_name` is the task model's spec there, default `model` when a string);
    `mutators` replaces the default operators; `before_call` runs before
    every paid model call (raise to stop). `executor` is where the task model runs (``local``, ``ray``,
    ``ray:ADDRESS`` or an Executor) with `replicas` copies of it; the search, journal, cache and budget stay in this
    process whichever it is.

    Selection: a child is accepted over its parent when its mean gain on paired dev rows exceeds `confidence`
    standard errors (0 accepts any gain; more refuses lucky ones); `holdout` of dev (0 to 0.5; 0 turns it off) is
    kept out of selection when that is at least 5 rows, and the `finalists` best candidates plus the seed are
    re-scored there before the winner is chosen.
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
    prices: Mapping[str, Price | Mapping[str, Any] | str] | None = None
    model_name: str | None = None
    progress: bool = True
    mutators: Sequence[Mutator] | None = None
    before_call: Callable[[], None] | None = None
    executor: str | Executor = "local"
    replicas: int | None = None
    confidence: float = _DEFAULTS.confidence
    holdout: float = _DEFAULTS.holdout
    finalists: int = _DEFAULTS.finalists

    def __post_init__(self) -> None:
        """Refuse selection settings out of range before any work (a typo should not cost a run)."""
        if isinstance(self.confidence, bool) or not isinstance(self.confidence, (int, float)):
            raise ValueError(f"confidence must be a number of standard errors, got {self.confidence!r}")
        if not math.isfinite(self.confidence) or self.confidence < 0:
            raise ValueError(f"confidence must be a finite number >= 0 (standard errors), got {self.confidence!r}")
        if isinstance(self.holdout, bool) or not isinstance(self.holdout, (int, float)):
            raise ValueError(f"holdout must be a share of dev between 0 and 0.5, got {self.holdout!r}")
        if not 0.0 <= self.holdout <= 0.5:
            raise ValueError(
                f"holdout must be a share of dev between 0 and 0.5 (0 turns the held-out re-score off), "
                f"got {self.holdout!r}"
            )
        if isinstance(self.finalists, bool) or not isinstance(self.finalists, int) or self.finalists < 1:
            raise ValueError(f"finalists must be a whole number >= 1, got {self.finalists!r}")
        Pricing.of(self.prices or {}, "")  # a bad price is a PriceError (a ValueError) here, before any work

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
        uses_task_model = self.optimizer_model is None  # resolved below, once the executor has bound the task model
        has_opt_model = not no_optimizer_model(self.optimizer_model)
        opt_model = resolve_model(self.optimizer_model) if has_opt_model and not uses_task_model else None
        ops = self._operators(has_opt_model, space, strategy, run_path)
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
                held.enter_context(run_lock(run_path))  # one run at a time in a directory
                check_run(run_path, fingerprint, resume)
            bound = executor.bind(self.model)
            if uses_task_model:
                opt_model = _task_model(base, bound, config)
                tqdm.write(
                    f"optimizer model: the task model ({model_identity(opt_model)[:80]}); pass "
                    f"optimizer_model='{NO_OPTIMIZER_MODEL}' (--optimizer-model {NO_OPTIMIZER_MODEL}) to use only the "
                    "no-model operators",
                    file=sys.stderr,
                )
            cache = open_cache(run_path)
            metric_before = metric_usage(metric)
            tracker = BudgetTracker(budget)
            task_caller = BudgetedCaller(cache, tracker, "task", self.before_call)
            opt_caller = BudgetedCaller(cache, tracker, "optimizer", self.before_call)
            journal = Journal(run_path / "journal.jsonl" if run_path else None, resume)
            tracker.seconds_offset = journal.last_elapsed()
            evaluator = Evaluator(
                metric,
                bound,
                task_caller,
                tracker,
                executor.workers(self.concurrency),
                run_path / "evaluations.jsonl" if run_path else None,
                resume,
                traced.config,
            )
            evaluator.pricing = self._pricing(config)
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
                    confidence=float(self.confidence),
                    holdout=float(self.holdout),
                    finalists=self.finalists,
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

    def _operators(
        self, has_opt_model: bool, space: SearchSpace | None, strategy: Search, run_path: Path | None
    ) -> list[Mutator]:
        """The mutators this run uses: the given or default ones (the model-based ones only with an optimizer model;
        the soft_prompt operator when the task model is a local `hf:` model and the run has a directory for its
        tensors), a space's choices unless enumerating it, by kind."""
        if self.mutators is not None:
            ops = list(self.mutators)
        else:
            ops = default_mutators(has_opt_model) + _soft_operators(self.model, run_path)
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
            "optimizer_model": self._optimizer_label(),
            "confidence": float(self.confidence),
            "holdout": float(self.holdout),
            "finalists": self.finalists,
            **({"prices": Pricing.of(self.prices, "").describe()} if self.prices else {}),
        }

    def _pricing(self, config: RunnableConfig | None) -> Pricing | None:
        """The prices per model spec (None without: the cost stays tokens per row); says which specs have none."""
        if not self.prices:
            return None
        configured = ((config or {}).get("configurable") or {}).get("model")
        task = self.model_name or _model_label(self.model) or _model_label(configured) or "local"
        pricing = Pricing.of(self.prices, task)
        if free := pricing.unpriced([task, *self.models]):
            tqdm.write(f"no price for {', '.join(free)}: its calls cost 0 (see --price)", file=sys.stderr)
        return pricing

    def _optimizer_label(self) -> str | None:
        """The optimizer model as run.json records it: None for none (as before the task model was the default),
        TASK_MODEL for the default, else the model's identity."""
        if no_optimizer_model(self.optimizer_model):
            return None
        if self.optimizer_model is None:
            return TASK_MODEL
        return _model_label(self.optimizer_model)


def _soft_operators(model: ModelLike | None, run_path: Path | None) -> list[Mutator]:
    """The soft_prompt operator, when the task model is a local `hf:` model (the [soft] extra, imported only then)
    and the run has a directory to write the trained tensors to."""
    spec = model.strip() if isinstance(model, str) else ""
    if run_path is None or not (spec.startswith("hf:") or type(model).__name__ == "TorchChatModel"):
        return []
    from microprompts.optimizers.mutators.soft import SoftPrompt

    assert model is not None
    return [SoftPrompt(model, run_path / "soft")]


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
    under `budget`; the keyword `settings` are Optimizer's (search, budget, model, optimizer_model, seed, minibatch,
    confidence, holdout, finalists, ...: an unknown one is a TypeError, one out of range a ValueError); `config` is a
    LangChain `RunnableConfig` for every flow run and the run's trace (see `Optimizer.run`)."""
    return Optimizer(**settings).run(
        flow, train=train, dev=dev, test=test, metric=metric, run_dir=run_dir, resume=resume, config=config
    )
