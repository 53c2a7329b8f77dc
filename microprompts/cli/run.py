"""The `run` and `evaluate` commands: one input through a flow, or a dataset through a flow and a metric."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from microprompts.cli.options import (
    AllowOpt,
    CliError,
    LimitOpt,
    MapOpt,
    MetricOpt,
    ModelOpt,
    RunFailed,
    allow_list,
    parse_json_arg,
)
from microprompts.data import Dataset, parse_map
from microprompts.evals import EvalResult, check_rows, resolve_metric
from microprompts.evals.executors import EXECUTOR_FORMS, as_executor
from microprompts.flows.refs import load_flow_ref

__all__ = ["evaluate", "failure_hint", "register", "run"]


def run(
    flow: Annotated[str, typer.Argument(help="FLOW: artifact.json, path/file.py:name or module:name.")],
    input: Annotated[str, typer.Option("--input", help="Input state as JSON, or @file.json.")],
    model: ModelOpt = None,
    allow_module: AllowOpt = None,
) -> None:
    """Run a flow once on one input and print its output state as JSON."""
    the_flow = load_flow_ref(flow, allow_list(allow_module))
    state = parse_json_arg(input, "--input")
    if not isinstance(state, dict):
        raise CliError("--input must be a JSON object")
    missing = [k for k in the_flow.input_keys if k not in state]
    if missing:
        raise CliError(f"--input is missing key(s) {missing}; flow {the_flow.name!r} needs {list(the_flow.input_keys)}")
    result = the_flow.compile(model=model).invoke(state)
    out = {k: result[k] for k in the_flow.output_keys if k in result}
    typer.echo(json.dumps(out, ensure_ascii=False, indent=2))


def evaluate(
    flow: Annotated[str, typer.Argument(help="FLOW: artifact.json, path/file.py:name or module:name.")],
    data: Annotated[str, typer.Option("--data", help="Dataset file: JSON, JSONL or CSV.")],
    metric: MetricOpt,
    model: ModelOpt = None,
    map: MapOpt = None,
    split: Annotated[str | None, typer.Option(help="For split files (SAMMO): train, dev or test.")] = None,
    limit: LimitOpt = None,
    concurrency: Annotated[int, typer.Option(help="Rows run at once.")] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    allow_module: AllowOpt = None,
    executor: Annotated[
        str, typer.Option("--executor", help=f"Where the model runs: {EXECUTOR_FORMS} (ray: microprompts[ray]).")
    ] = "local",
    replicas: Annotated[
        int | None,
        typer.Option("--replicas", min=1, help="Model copies: llama.cpp instances (local) or Ray actors (ray)."),
    ] = None,
) -> None:
    """Run a flow on every row of a dataset and score it with a metric."""
    runner = as_executor(executor, replicas)  # a bad name or a missing Ray fails before anything is loaded
    the_flow = load_flow_ref(flow, allow_list(allow_module))
    scorer = resolve_metric(metric)
    ds = Dataset.load(data, map=parse_map(map or []))
    if split:
        part = getattr(ds, split, None)
        if part is None:
            raise CliError(f"{data} has no {split!r} split")
        ds = part
    rows = list(ds)[:limit] if limit else list(ds)
    check_rows(the_flow, rows, scorer)  # before any model call is paid for
    with runner:
        result = runner.evaluate(the_flow, rows, scorer, model=model, concurrency=concurrency, progress=not as_json)
    summary = result.summary()
    if as_json:
        typer.echo(json.dumps(summary))
        _fail_if_every_row_failed(result)
        return
    typer.echo(
        f"{the_flow.name}: score {summary['score']:.3f} on {summary['n']} rows, {summary['errors']} errors, "
        f"{summary['calls']} calls ({summary['cached_calls']} cached), "
        f"{summary['prompt_tokens']}+{summary['completion_tokens']} tokens, {summary['seconds']:.1f}s"
    )
    for row in result.rows[:3]:
        if row.error or row.feedback:
            typer.echo(f"  row {row.index}: {row.error or row.feedback}")
    _fail_if_every_row_failed(result)


# What a failure's text says -> what the user can do about it.
_HINTS = (
    (("no input(s)", "has no input"), "name the file's fields with --map SRC=inputs.NAME"),
    (("metric", "expected output"), "check --metric's field against the rows' outputs (--map SRC=output.NAME)"),
    (
        ("connect", "timed out", "timeout", "refused", "unreachable", "status code", "api key", "apikey"),
        "check --model: is the server up at that address, and is its API key set?",
    ),
)


def failure_hint(error: str) -> str:
    """What to try for a run in which every row failed, read off the first row's error ('' when unknown)."""
    text = error.lower()
    for needles, hint in _HINTS:
        if any(n in text for n in needles):
            return f" (hint: {hint})"
    return ""


def _fail_if_every_row_failed(result: EvalResult) -> None:
    """A run in which no row ran is a failure of the run (a model that cannot be reached, a bad spec), not a score:
    exit 1 with the first row's error and a hint."""
    if result.n and result.errors == result.n:
        first = str(result.rows[0].error)
        raise RunFailed(f"every row failed; the first with: {first}{failure_hint(first)}")


def register(app: typer.Typer) -> None:
    """Add `run` and `evaluate` to the command line."""
    app.command("run")(run)
    app.command("evaluate")(evaluate)
