"""The `monitor` and `reoptimize` commands: a deployed agent's rolling feedback score, latency and tokens from its run
store; and, when the score falls under a mark, an optimization from the deployed artifact on rows built from the
runs with feedback, whose result is written only if it beats the deployed flow on held-out feedback rows."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Annotated, Any

import typer

from microprompts.cli.optimize import OPTIMIZER_MODEL_HELP, optimizer_model_option
from microprompts.cli.options import AllowOpt, CliError, ModelOpt, allow_list
from microprompts.evals import resolve_metric
from microprompts.evals.finetune import last_correction, rows_from_runs
from microprompts.flows import Flow
from microprompts.flows.refs import load_flow_ref
from microprompts.models import resolve_model
from microprompts.optimizers import Budget, optimize
from microprompts.serve.monitor import feedback_score, monitor, plot, table
from microprompts.serve.store import open_store

__all__ = ["monitor_command", "register", "reoptimize_command"]

WindowOpt = Annotated[int, typer.Option("--window", min=1, help="Runs with feedback in the rolling score.")]


def _runs(store: str) -> list[dict[str, Any]]:
    """Every run in the store, whole, oldest first (one clear error for a missing, corrupt or empty store)."""
    opened = open_store(store)
    try:
        return opened.full_runs()
    finally:
        opened.close()


def monitor_command(
    store: Annotated[str, typer.Argument(help="STORE: the serve run store (runs.sqlite).")],
    window: WindowOpt = 20,
    plot_path: Annotated[
        str | None, typer.Option("--plot", help="PNG of the rolling score (default STORE.png).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the stats as one JSON line instead of a table.")
    ] = False,
) -> None:
    """Rolling feedback score per artifact and per node, latency and tokens per node: a table and a PNG plot."""
    runs = _runs(store)
    stats = monitor(runs, window, corrected=lambda run: last_correction(run) is not None)
    target = plot(runs, plot_path or str(Path(store).with_suffix(".png")), window)
    if as_json:
        typer.echo(json.dumps({"artifacts": [s.model_dump() for s in stats], "plot": str(target)}))
        return
    typer.echo(table(stats))
    typer.echo(f"plot: {target}", err=True)


def _artifact_hash(path: str, flow: Flow) -> str:
    """The hash the server records for this artifact: the file's own `content_hash`, else the flow's."""
    try:
        recorded = json.loads(Path(path).read_text(encoding="utf-8")).get("content_hash")
    except (OSError, ValueError, AttributeError):
        recorded = None
    return recorded if isinstance(recorded, str) else flow.content_hash()


def reoptimize_command(
    store: Annotated[str, typer.Argument(help="STORE: the serve run store (runs.sqlite).")],
    deployed: Annotated[str, typer.Option("--from", help="The deployed artifact (JSON).")],
    below: Annotated[float, typer.Option("--below", help="Re-optimize when the rolling score is under this.")],
    out: Annotated[str, typer.Option("--out", help="Where the new artifact goes (only when it wins).")],
    window: WindowOpt = 20,
    metric: Annotated[str, typer.Option("--metric", help="Metric against the feedback rows' gold.")] = "exact_match",
    min_score: Annotated[
        float, typer.Option("--min-score", help="Feedback at least this makes a run's own output gold.")
    ] = 1.0,
    model: ModelOpt = None,
    optimizer_model: Annotated[str | None, typer.Option("--optimizer-model", help=OPTIMIZER_MODEL_HELP)] = None,
    budget_calls: Annotated[int | None, typer.Option("--budget-calls", min=1, help="Task-model calls.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (held-out split and search).")] = 0,
    run_dir: Annotated[str | None, typer.Option("--run-dir", help="Optimization run directory.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Re-optimize even when the score is not below.")] = False,
    allow_module: AllowOpt = None,
) -> None:
    """Re-optimize a deployed flow from its feedback when its rolling score falls under --below; print one JSON line."""
    flow = load_flow_ref(deployed, allow_list(allow_module))
    scorer = resolve_metric(metric)
    runs = _runs(store)
    deployed_hash = _artifact_hash(deployed, flow)
    mine = [r for r in runs if r.get("artifact_hash") == deployed_hash] or runs
    scores = [s for s in map(feedback_score, mine) if s is not None][-window:]
    if not scores:
        raise CliError(f"run store {store} holds no feedback for the deployed artifact")
    rolling = sum(scores) / len(scores)
    summary: dict[str, Any] = {"rolling_score": round(rolling, 6), "window": len(scores), "below": below}
    if rolling >= below and not force:
        typer.echo(f"rolling score {rolling:.3f} over {len(scores)} runs is not below {below}: nothing to do", err=True)
        typer.echo(json.dumps({**summary, "reoptimized": False, "written": None}))
        return
    rows = rows_from_runs(flow, [r for r in runs if feedback_score(r) is not None], min_score)
    if len(rows) < 3:
        raise CliError(f"only {len(rows)} run(s) with usable feedback (a correction or a score >= {min_score}); need 3")
    random.Random(seed).shuffle(rows)
    held = max(1, len(rows) // 3)
    result = optimize(
        flow,
        train=rows[held:],
        dev=rows[held:],
        test=rows[:held],
        metric=scorer,
        run_dir=run_dir or str(Path(out).with_suffix("")) + ".run",
        budget=Budget(calls=budget_calls),
        model=resolve_model(model, trust=True) if model else None,
        optimizer_model=optimizer_model_option(optimizer_model),
        seed=seed,
        progress=False,
    )
    wins = result.test_best is not None and result.test_baseline is not None and result.test_best > result.test_baseline
    if wins:
        result.best.save(out)
    typer.echo(
        f"held-out feedback rows ({held}): deployed {result.test_baseline}, new {result.test_best}: "
        + (f"wrote {out}" if wins else "kept the deployed artifact"),
        err=True,
    )
    summary.update(rows=len(rows), held_out=held, deployed=result.test_baseline, new=result.test_best)
    typer.echo(json.dumps({**summary, "reoptimized": True, "written": out if wins else None}))


def register(app: typer.Typer) -> None:
    """Add `monitor` and `reoptimize` to the CLI app."""
    app.command("monitor")(monitor_command)
    app.command("reoptimize")(reoptimize_command)
