"""The `microprompts optimize` command: a thin shell over `Optimizer`, ending with one JSON line on stdout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from microprompts.cli.options import (
    AllowOpt,
    CliError,
    Interrupted,
    MapOpt,
    MetricOpt,
    ModelOpt,
    allow_list,
)
from microprompts.data import Dataset, parse_map
from microprompts.evals import check_rows, resolve_metric
from microprompts.evals.executors import EXECUTOR_FORMS
from microprompts.flows import Flow
from microprompts.flows.refs import load_flow_ref
from microprompts.models import ModelLike, resolve_model
from microprompts.models.spec import trust_model
from microprompts.nodes import RefError, load_object
from microprompts.optimizers import Budget, Optimizer, SearchSpace
from microprompts.optimizers.cost import Price, PriceError, parse_price
from microprompts.optimizers.optimize import NO_OPTIMIZER_MODEL, no_optimizer_model

__all__ = ["OPTIMIZER_MODEL_HELP", "load_target", "optimizer_model_option", "register"]

SEARCHES = ("beam", "evolution", "pareto", "enumerate")
OPTIMIZER_MODEL_HELP = "Model spec for the model-based mutators (default: the task model; none: they are left out)."


def optimizer_model_option(spec: str | None) -> ModelLike | None:
    """--optimizer-model as Optimizer takes it: unset is None (the task model serves), ``none`` stays ``none`` (no
    optimizer model), any other spec is the user's model."""
    if spec is None:
        return None
    if no_optimizer_model(spec):
        return NO_OPTIMIZER_MODEL
    return resolve_model(spec, trust=True)


def load_target(ref: str, allow: list[str] | None = None) -> Any:
    """The Flow or SearchSpace that FLOW names (artifact JSON, path/file.py:name or module:name)."""
    if ref.endswith(".json") or ":" not in ref:
        return load_flow_ref(ref, allow)
    obj = load_object(ref)
    if callable(obj) and not isinstance(obj, (Flow, SearchSpace)):
        obj = obj()
    if not isinstance(obj, (Flow, SearchSpace)):
        raise RefError(f"{ref!r} is a {type(obj).__name__}, not a microprompts Flow or SearchSpace")
    return obj


def _splits(train: str, dev: str | None, test: str | None, field_map: dict[str, str]) -> tuple[Any, Any, Any]:
    """(train, dev, test) rows; a split file given as --train supplies the splits not given."""
    data = Dataset.load(train, map=field_map)
    train_rows, dev_rows, test_rows = data, None, None
    if dev is None:
        if data.train is None or data.dev is None:
            raise CliError(f"--dev is required: {train} is not a split file with train and dev parts")
        train_rows, dev_rows, test_rows = data.train, data.dev, data.test
    else:
        if data.train is not None:
            train_rows = data.train
        dev_rows = Dataset.load(dev, map=field_map)
    if test is not None:
        test_rows = Dataset.load(test, map=field_map)
    return list(train_rows), list(dev_rows), list(test_rows) if test_rows is not None else None


def optimize_command(
    flow: Annotated[
        str, typer.Argument(help="FLOW: artifact.json, path/file.py:name or module:name (a Flow or a SearchSpace).")
    ],
    train: Annotated[str, typer.Option("--train", help="Training rows (JSON, JSONL, CSV) or a SAMMO split file.")],
    metric: MetricOpt,
    dev: Annotated[
        str | None, typer.Option("--dev", help="Dev rows, for selection (default: the split file's).")
    ] = None,
    test: Annotated[str | None, typer.Option("--test", help="Held-out rows for the final figures.")] = None,
    search: Annotated[str, typer.Option("--search", help="beam, evolution, pareto or enumerate.")] = "beam",
    budget_calls: Annotated[int | None, typer.Option("--budget-calls", help="Task-model calls.")] = None,
    budget_optimizer_calls: Annotated[
        int | None, typer.Option("--budget-optimizer-calls", help="Optimizer-model calls.")
    ] = None,
    budget_tokens: Annotated[int | None, typer.Option("--budget-tokens", help="Tokens, both models.")] = None,
    budget_seconds: Annotated[float | None, typer.Option("--budget-seconds", help="Wall-clock seconds.")] = None,
    model: ModelOpt = None,
    optimizer_model: Annotated[
        str | None,
        typer.Option("--optimizer-model", help=OPTIMIZER_MODEL_HELP),
    ] = None,
    models: Annotated[
        list[str] | None, typer.Option("--models", help="Model spec a node may switch to (repeatable).")
    ] = None,
    cost_weight: Annotated[
        float,
        typer.Option(
            "--cost-weight",
            min=0.0,
            help="Score given up per unit of cost per row: tokens, or with --price dollars (seconds with SPEC=s).",
        ),
    ] = 0.0,
    price: Annotated[
        list[str] | None,
        typer.Option(
            "--price",
            help="SPEC=IN/OUT dollars per 1M input/output tokens, or SPEC=Xs dollars per second (repeatable; a model "
            "without one costs 0; --model's spec names the task model).",
        ),
    ] = None,
    out: Annotated[str | None, typer.Option("--out", help="Run directory (default runs/<flow name>).")] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Continue the run in --out (without it, a run there starts over, keeping its call cache)."
        ),
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    train_limit: Annotated[int | None, typer.Option("--train-limit", min=1, help="Use the first N train rows.")] = None,
    dev_limit: Annotated[int | None, typer.Option("--dev-limit", min=1, help="Use the first N dev rows.")] = None,
    test_limit: Annotated[int | None, typer.Option("--test-limit", min=1, help="Use the first N test rows.")] = None,
    map: MapOpt = None,
    frozen: Annotated[
        list[str] | None, typer.Option("--frozen", help="Address pattern never changed, e.g. reply.task (repeatable).")
    ] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option("--kind", help="Limit mutations to content, structure, graph or parameters (repeatable)."),
    ] = None,
    minibatch: Annotated[int, typer.Option("--minibatch", help="Dev rows that screen each candidate.")] = 8,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Rows run at once.")] = 4,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bar on stderr.")] = True,
    allow_module: AllowOpt = None,
    executor: Annotated[
        str, typer.Option("--executor", help=f"Where the task model runs: {EXECUTOR_FORMS} (ray: microprompts[ray]).")
    ] = "local",
    replicas: Annotated[
        int | None,
        typer.Option("--replicas", min=1, help="Model copies: llama.cpp instances (local) or Ray actors (ray)."),
    ] = None,
) -> None:
    """Optimize a flow on dev under a budget; print one JSON line; write best.json, journal.jsonl, report.html."""
    if search not in SEARCHES:
        raise CliError(f"unknown --search {search!r}: expected one of {', '.join(SEARCHES)}")
    prices = _prices(price or [])  # a bad --price fails before anything is read
    target = load_target(flow, allow_list(allow_module))
    scorer = resolve_metric(metric)
    train_rows, dev_rows, test_rows = _splits(train, dev, test, parse_map(map or []))
    train_rows, dev_rows = train_rows[:train_limit], dev_rows[:dev_limit]
    test_rows = test_rows[:test_limit] if test_rows is not None else None
    name = getattr(target, "name", None) or target.flow.name
    run_dir = Path(out) if out else Path("runs") / name
    budget = Budget(
        calls=budget_calls, optimizer_calls=budget_optimizer_calls, tokens=budget_tokens, seconds=budget_seconds
    )
    optimizer = Optimizer(
        search=search,
        budget=budget,
        model=resolve_model(model, trust=True) if model else None,
        optimizer_model=optimizer_model_option(optimizer_model),
        models=[_trusted(m) for m in models or ()],
        cost_weight=cost_weight,
        prices=prices,
        model_name=model,
        frozen=frozen or (),
        kinds=kind or None,
        seed=seed,
        concurrency=concurrency,
        minibatch=minibatch,
        progress=progress,
        executor=executor,
        replicas=replicas,
    )
    base = target if isinstance(target, Flow) else target.flow
    for rows in (train_rows, dev_rows, test_rows or []):
        check_rows(base, rows, scorer)  # before any model call is paid for
    try:
        result = optimizer.run(
            target, train=train_rows, dev=dev_rows, test=test_rows, metric=scorer, run_dir=run_dir, resume=resume
        )
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted: {run_dir} keeps what was paid for; continue with the same command and --resume"
        ) from None
    typer.echo(result.report(), err=True)
    typer.echo(json.dumps(result.summary()))


def _prices(values: list[str]) -> dict[str, Price] | None:
    """--price values by spec (None when there are none); a bad or repeated one is a one-line error."""
    prices: dict[str, Price] = {}
    for value in values:
        try:
            spec, price = parse_price(value)
        except PriceError as exc:
            raise CliError(str(exc)) from None
        if spec in prices:
            raise CliError(f"--price names {spec!r} twice")
        prices[spec] = price
    return prices or None


def _trusted(spec: str) -> str:
    """A spec named with --models: the user's, so its base URL may get the API key."""
    trust_model(spec)
    return spec


def register(app: typer.Typer) -> None:
    """Add the `optimize` command to the CLI app."""
    app.command("optimize")(optimize_command)
