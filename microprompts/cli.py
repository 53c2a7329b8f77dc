"""The `microprompts` command line: a thin shell over the public API; every error is one line and exit 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer

app = typer.Typer(help="LangGraph flows of micro-prompts, optimized end to end.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)

ModelOpt = Annotated[str | None, typer.Option("--model", help="Model spec: local, local:PATH.gguf, openai:NAME[@URL].")]
MapOpt = Annotated[list[str] | None, typer.Option("--map", help="Field map SRC=inputs.X|output.X (repeatable).")]
AllowOpt = Annotated[list[str] | None, typer.Option("--allow-module", help="Module prefix artifacts may import.")]


class CliError(Exception):
    """An error to print as one line with exit code 2."""


def parse_json_arg(value: str, what: str) -> Any:
    """A JSON argument, inline or `@file`."""
    try:
        text = Path(value[1:]).read_text(encoding="utf-8") if value.startswith("@") else value
        return json.loads(text)
    except OSError as exc:
        raise CliError(f"cannot read {what} file {value[1:]}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise CliError(f"{what} is not valid JSON: {exc.msg} at position {exc.pos}") from exc


def _allow(allow: list[str] | None) -> list[str] | None:
    if not allow:
        return None
    from microprompts.nodes.function import DEFAULT_ALLOWED

    return list(DEFAULT_ALLOWED) + allow


@app.command()
def run(
    flow: Annotated[str, typer.Argument(help="FLOW: artifact.json, path/file.py:name or module:name.")],
    input: Annotated[str, typer.Option("--input", help="Input state as JSON, or @file.json.")],
    model: ModelOpt = None,
    allow_module: AllowOpt = None,
) -> None:
    """Run a flow once on one input and print its output state as JSON."""
    from microprompts.flows.refs import load_flow_ref

    the_flow = load_flow_ref(flow, _allow(allow_module))
    state = parse_json_arg(input, "--input")
    if not isinstance(state, dict):
        raise CliError("--input must be a JSON object")
    missing = [k for k in the_flow.input_keys if k not in state]
    if missing:
        raise CliError(f"--input is missing key(s) {missing}; flow {the_flow.name!r} needs {list(the_flow.input_keys)}")
    result = the_flow.compile(model=model).invoke(state)
    out = {k: result[k] for k in the_flow.output_keys if k in result}
    typer.echo(json.dumps(out, ensure_ascii=False, indent=2))


@app.command()
def evaluate(
    flow: Annotated[str, typer.Argument(help="FLOW: artifact.json, path/file.py:name or module:name.")],
    data: Annotated[str, typer.Option("--data", help="Dataset file: JSON, JSONL or CSV.")],
    metric: Annotated[str, typer.Option("--metric", help="exact_match[:FIELD], jaccard:FIELD[:VALID], f1:FIELD, "
                                        "llm_judge:RUBRIC_FILE[:MODEL], or path.py:fn / module:fn.")],
    model: ModelOpt = None,
    map: MapOpt = None,
    split: Annotated[str | None, typer.Option(help="For split files (SAMMO): train, dev or test.")] = None,
    limit: Annotated[int | None, typer.Option(help="Evaluate only the first N rows.")] = None,
    concurrency: Annotated[int, typer.Option(help="Rows run at once.")] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    allow_module: AllowOpt = None,
) -> None:
    """Run a flow on every row of a dataset and score it with a metric."""
    from microprompts.data import Dataset, parse_map
    from microprompts.flows import evaluate as run_evaluation
    from microprompts.flows.refs import load_flow_ref
    from microprompts.optimizers.metrics import resolve_metric

    the_flow = load_flow_ref(flow, _allow(allow_module))
    scorer = resolve_metric(metric)
    ds = Dataset.load(data, map=parse_map(map or []))
    if split:
        part = getattr(ds, split, None)
        if part is None:
            raise CliError(f"{data} has no {split!r} split")
        ds = part
    rows = list(ds)[:limit] if limit else list(ds)
    result = run_evaluation(the_flow, rows, scorer, model=model, concurrency=concurrency, progress=not as_json)
    summary = result.summary()
    if as_json:
        typer.echo(json.dumps(summary))
        return
    typer.echo(f"{the_flow.name}: score {summary['score']:.3f} on {summary['n']} rows, {summary['errors']} errors, "
               f"{summary['calls']} calls ({summary['cached_calls']} cached), "
               f"{summary['prompt_tokens']}+{summary['completion_tokens']} tokens, {summary['seconds']:.1f}s")
    for row in result.rows[:3]:
        if row.error or row.feedback:
            typer.echo(f"  row {row.index}: {row.error or row.feedback}")


def _register_optional() -> None:
    """Commands that live in other rooms (optimize, serve, deploy) register themselves when present."""
    import importlib

    for module in ("microprompts.optimizers.cli", "microprompts.serve.cli"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                continue
            raise
        mod.register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app; known errors print `error: ...` on one line and exit 2."""
    _register_optional()
    try:
        app(args=argv, standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    except click.exceptions.Abort:
        typer.echo("error: aborted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return 2
    except (CliError, ValueError, KeyError, LookupError, OSError, ImportError, RuntimeError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        typer.echo(f"error: {str(message).splitlines()[0] if str(message) else type(exc).__name__}", err=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
