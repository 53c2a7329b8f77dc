"""Where rows run: the seam between an evaluation and the workers that run its rows and calls.

An evaluation runs one flow over rows; each row (`run_row`: one flow run, its calls, usage and traces) is the unit.
The `local` executor runs rows on a pool of threads in this process, as `evaluate` always did; `replicas=N` gives the
embedded model N llama.cpp instances (each with its own lock and threads) instead of one. The `ray` executor
(``"ray"`` or ``"ray:ADDRESS"``) runs the rows in this process too, but sends each call of the task model to one of
N Ray actors, each holding its own copy of the model (its own llama.cpp and threads for the embedded model).

Either way the search, the journal, the call cache and the budget stay in this process: every request goes through
the same caller (cache lookup, budget charge, retries) before it reaches a worker, so resume, "never pay a call
twice" and the budget's bounds hold exactly as with the local executor. Ray is an optional extra, loaded only when
the `ray` executor is asked for (`microprompts.evals.executors.as_executor`).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

from langchain_core.runnables import RunnableConfig

from microprompts.evals.evaluate import EvalResult, evaluate
from microprompts.evals.score import Metric
from microprompts.flows.flow import Flow
from microprompts.models import ModelCaller, ModelLike, resolve_model
from microprompts.models.local import LocalChatModel

__all__ = [
    "Executor",
    "ExecutorError",
    "LocalExecutor",
]


class ExecutorError(ValueError):
    """An executor that cannot be used: an unknown name, a bad replica count, or Ray missing (the message says how
    to install it)."""


class Executor:
    """Runs an evaluation's rows: `bind` the task model to the workers, then `run` the rows; a context manager that
    releases its workers on exit. This base class is the local executor's behaviour: threads in this process."""

    name = "local"

    def __init__(self, replicas: int | None = None) -> None:
        if replicas is not None and replicas < 1:
            raise ExecutorError(f"replicas must be at least 1, not {replicas}")
        self.replicas = replicas

    def bind(self, model: ModelLike | None) -> ModelLike | None:
        """The task model as the rows should call it (unchanged here)."""
        return model

    def workers(self, concurrency: int) -> int:
        """How many rows run at once for an evaluation that asks for `concurrency`."""
        return max(1, concurrency)

    def evaluate(
        self,
        flow: Flow,
        rows: Sequence[Any],
        metric: Metric | None = None,
        *,
        model: ModelLike | None = None,
        caller: ModelCaller | None = None,
        concurrency: int = 4,
        progress: bool = False,
        config: RunnableConfig | None = None,
    ) -> EvalResult:
        """`evaluate` (same arguments) with the rows run here: the task model bound to this executor's workers, at
        least one row in flight per worker."""
        return evaluate(
            flow,
            rows,
            metric,
            model=self.bind(model),
            caller=caller,
            concurrency=self.workers(concurrency),
            progress=progress,
            config=config,
        )

    def describe(self) -> str:
        """A short label for summaries and benchmark tables."""
        return self.name if self.replicas is None else f"{self.name} x{self.replicas}"

    def close(self) -> None:
        """Release the workers (nothing to release here)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


class LocalExecutor(Executor):
    """Today's executor: rows on threads in this process; with `replicas=N` the embedded model gets N in-process
    llama.cpp instances, each with its own lock and threads (`MICROPROMPTS_REPLICAS` sets the model's default)."""

    def bind(self, model: ModelLike | None) -> ModelLike | None:
        """The embedded model with `replicas` copies when more than one is asked for; any other model unchanged."""
        if self.replicas is None or self.replicas == 1:
            return model
        if model is None or (isinstance(model, str) and model.strip().split(":", 1)[0] == "local"):
            model = resolve_model(model, trust=True)
        if not isinstance(model, LocalChatModel):
            return model  # an API model: its calls already run in parallel, one per thread
        if "replicas" not in type(model).model_fields:
            raise ExecutorError("this version of the embedded model has no replicas")
        return model.model_copy(update={"replicas": self.replicas})

    def workers(self, concurrency: int) -> int:
        """At least one row per replica, so every replica has work."""
        return max(1, concurrency, self.replicas or 1)
