"""The `microprompts export-finetune` command: per micro-prompt chat JSONL from an optimized flow's runs on rows
(kept by score) or from a serve run store (kept by feedback)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from microprompts.cli.options import AllowOpt, CliError, MapOpt, ModelOpt, RunFailed, allow_list
from microprompts.data import Dataset, parse_map
from microprompts.evals import check_rows, resolve_metric
from microprompts.evals.finetune import DEFAULT_CONTEXT, FinetuneReport, export_finetune, export_runs
from microprompts.flows.refs import load_flow_ref
from microprompts.models import resolve_model
from microprompts.serve.store import open_store

__all__ = ["export_command", "register"]


def export_command(
    artifact: Annotated[str, typer.Argument(help="ARTIFACT: the optimized flow (artifact.json or a reference).")],
    out: Annotated[str, typer.Option("--out", help="Directory for <node>.jsonl files.")],
    data: Annotated[str | None, typer.Option("--data", help="Rows (JSON, JSONL, CSV) to run the flow on.")] = None,
    store: Annotated[
        str | None, typer.Option("--store", help="A serve run store: runs with positive feedback or a correction.")
    ] = None,
    metric: Annotated[str, typer.Option("--metric", help="Metric for --data rows (as in evaluate).")] = "exact_match",
    min_score: Annotated[
        float, typer.Option("--min-score", help="Keep rows (or feedback) scoring at least this.")
    ] = 1.0,
    context: Annotated[
        int, typer.Option("--context", min=64, help="The target model's context: longer lines are dropped.")
    ] = DEFAULT_CONTEXT,
    model: ModelOpt = None,
    map: MapOpt = None,
    allow_module: AllowOpt = None,
) -> None:
    """Write fine-tuning JSONL per micro-prompt; print the report on stderr and one JSON line on stdout."""
    if (data is None) == (store is None):
        raise CliError("give exactly one of --data FILE or --store RUNS.sqlite")
    flow = load_flow_ref(artifact, allow_list(allow_module))
    if data is not None:
        scorer = resolve_metric(metric)
        rows = list(Dataset.load(data, map=parse_map(map or [])))
        check_rows(flow, rows, scorer)  # before any model call is paid for
        task_model = resolve_model(model, trust=True) if model else None
        report = export_finetune(flow, rows, scorer, out, model=task_model, min_score=min_score, context=context)
    else:
        assert store is not None
        runs_store = open_store(store)
        try:
            runs = runs_store.full_runs(with_feedback_only=True)
        finally:
            runs_store.close()
        if not runs:
            raise CliError(f"run store {store} holds no run with feedback")
        report = export_runs(flow, runs, out, min_score=min_score, context=context)
    _finish(report)


def _finish(report: FinetuneReport) -> None:
    typer.echo(report.line(), err=True)
    if not report.files:
        raise RunFailed(f"no line was written: {report.line()}")
    summary = report.model_dump()
    for part in summary["files"].values():
        part.pop("per_line")
    typer.echo(json.dumps(summary))


def register(app: typer.Typer) -> None:
    """Add the `export-finetune` command to the CLI app."""
    app.command("export-finetune")(export_command)
