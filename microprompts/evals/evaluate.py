"""Running a flow over dataset rows concurrently: predictions, scores, feedback, errors, traces and usage."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs, patch_config
from pydantic import BaseModel, Field
from tqdm.auto import tqdm

from microprompts.evals.score import Metric, Score, as_score
from microprompts.flows.flow import Flow
from microprompts.models import ModelCaller, ModelLike, Usage
from microprompts.models.tracing import traced_run, with_run
from microprompts.nodes import NodeTrace, Recorder, default_caller
from microprompts.nodes.runtime import RECORDER_KEY

__all__ = ["EvalResult", "RowResult", "check_rows", "evaluate", "row_parts", "run_row"]

RECURSION_LIMIT = 50
"""The graph steps a row may take unless the config names a `recursion_limit` (LangGraph's own default is 25)."""


class RowResult(BaseModel):
    """One row's end-to-end run: prediction, score and feedback, or the error that failed it."""

    index: int
    id: str | None = None
    inputs: dict[str, Any]
    expected: dict[str, Any] = Field(default_factory=dict)
    prediction: dict[str, Any] | None = None
    score: float = 0.0
    feedback: str = ""
    error: str | None = None
    traces: list[NodeTrace] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    seconds: float = 0.0


class EvalResult(BaseModel):
    """A flow's run over rows: the mean score (failed rows count 0), per-row results and total usage."""

    score: float
    n: int
    errors: int
    rows: list[RowResult]
    usage: Usage
    seconds: float

    def summary(self) -> dict[str, Any]:
        """The CLI's `--json` object."""
        return {
            "score": round(self.score, 6),
            "n": self.n,
            "errors": self.errors,
            "calls": self.usage.calls,
            "cached_calls": self.usage.cached_calls,
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "seconds": round(self.seconds, 3),
        }

    def failures(self) -> list[RowResult]:
        """Rows that errored or scored below 1."""
        return [r for r in self.rows if r.error or r.score < 1.0]


def row_parts(row: Any) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """(inputs, expected output, id) from a dataset Row or a `{"inputs", "output"}` dict."""
    if isinstance(row, dict):
        return dict(row.get("inputs", {})), dict(row.get("output", {})), row.get("id")
    return dict(row.inputs), dict(getattr(row, "output", {}) or {}), getattr(row, "id", None)


def check_rows(flow: Flow, rows: Sequence[Any], metric: Metric | None = None) -> None:
    """Raise ValueError naming the first row that lacks an input the flow reads, or an expected output field the
    metric reads (`metric.expected_fields`, set by the built-ins): checked before any model call is paid for."""
    needs = tuple(getattr(metric, "expected_fields", ()))
    for number, row in enumerate(rows, 1):
        inputs, expected, row_id = row_parts(row)
        where = f"row {number}" + (f" (id {row_id})" if row_id is not None else "")
        missing = [k for k in flow.input_keys if k not in inputs]
        if missing:
            raise ValueError(
                f"{where} has no input(s) {missing} (it has {sorted(inputs)}); flow {flow.name!r} reads "
                f"{list(flow.input_keys)}: name the file's fields with --map SRC=inputs.NAME"
            )
        if problems := flow.input_problems(inputs):
            raise ValueError(f"{where} has badly typed input(s): " + "; ".join(problems))
        lacking = [k for k in needs if k not in expected and not isinstance(expected.get("outputs"), list)]
        if lacking:
            raise ValueError(
                f"{where} has no expected output {lacking} for the metric (it has {sorted(expected)}): "
                "name the file's field with --map SRC=output.NAME"
            )


def run_row(
    graph: Any, flow: Flow, index: int, row: Any, metric: Metric | None, config: RunnableConfig | None = None
) -> RowResult:
    """Run the compiled graph on one row and score it; a failure is recorded, never raised (metric bugs are). The row
    is a traced run ("row", under `config`'s callbacks) holding the flow's run and the metric's, ending with the
    score; the flow runs under `config` (its callbacks, tags, metadata, configurable) plus the row's recorder."""
    inputs, expected, row_id = row_parts(row)
    recorder = Recorder()
    result = RowResult(index=index, id=row_id, inputs=inputs, expected=expected)
    started = time.perf_counter()
    named = with_run(config, "row", row_index=index, **({"row_id": row_id} if row_id is not None else {}))
    with traced_run(named, "row", {"inputs": inputs}) as run:
        try:
            missing = [k for k in flow.input_keys if k not in inputs]
            if missing:
                raise KeyError(f"row has no input(s) {missing}")
            flow_config = merge_configs(run.config, {"configurable": {RECORDER_KEY: recorder}})
            state = graph.invoke(inputs, config=flow_config)
            result.prediction = {k: state[k] for k in flow.output_keys if k in state}
        except Exception as exc:  # noqa: BLE001 - one failing row never stops the run
            result.error = f"{type(exc).__name__}: {exc}"[:500]
        result.seconds = time.perf_counter() - started
        result.traces = list(recorder.traces)
        result.usage = recorder.meter.snapshot()
        if result.error is None and metric is not None:
            scored: Score = as_score(metric(row, result.prediction or {}))
            result.score, result.feedback = scored.value, scored.feedback
        elif result.error is not None:
            result.feedback = f"failed: {result.error}"
        run.outputs = {"prediction": result.prediction, "score": result.score, "error": result.error}
    return result


def evaluate(
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
    """Run the whole compiled flow on every row concurrently and score the final states with `metric`.

    `config` is a LangChain `RunnableConfig` (callbacks, tags, metadata, `configurable`, `recursion_limit`, run
    name): every row's flow runs under it, so a tracer sees one "evaluate" run holding a "row" run per row.
    """
    graph = flow.compile(model=model, caller=caller or default_caller())
    rows = list(rows)
    limit = (config or {}).get("recursion_limit", RECURSION_LIMIT)
    with traced_run(config, "evaluate", {"flow": flow.name, "rows": len(rows)}) as run:
        result = _run_rows(
            graph, flow, rows, metric, concurrency, progress, patch_config(run.config, recursion_limit=limit)
        )
        run.outputs = {"score": result.score, "n": result.n, "errors": result.errors}
    return result


def _run_rows(
    graph: Any,
    flow: Flow,
    rows: list[Any],
    metric: Metric | None,
    concurrency: int,
    progress: bool,
    config: RunnableConfig,
) -> EvalResult:
    """Every row through `run_row` on a pool of `concurrency` threads, under `config`."""
    started = time.perf_counter()
    bar = tqdm(total=len(rows), desc=f"evaluate {flow.name}", disable=not progress, leave=False)
    results: list[RowResult] = [None] * len(rows)  # type: ignore[list-item]

    def one(i: int) -> None:
        results[i] = run_row(graph, flow, i, rows[i], metric, config)
        bar.update(1)

    pool = ThreadPoolExecutor(max_workers=max(1, concurrency))
    try:
        for future in [pool.submit(one, i) for i in range(len(rows))]:
            future.result()
    except BaseException:
        # Ctrl-C (or a metric bug): queued rows are dropped at once; the rows in flight finish their current call
        # in the background. Waiting for the whole queue would ignore Ctrl-C for minutes.
        pool.shutdown(wait=False, cancel_futures=True)
        bar.close()
        raise
    pool.shutdown()
    bar.close()
    usage = Usage()
    for r in results:
        usage = usage + r.usage
    n = len(results)
    return EvalResult(
        score=sum(r.score for r in results) / n if n else 0.0,
        n=n,
        errors=sum(1 for r in results if r.error),
        rows=results,
        usage=usage,
        seconds=time.perf_counter() - started,
    )
