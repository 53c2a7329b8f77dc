"""The `microprompts synthesize` command: rows for a flow written by a generator model, checked, deduplicated,
optionally judged and teacher-labelled, written as JSONL (and seeded train/dev/test files with --split)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from tqdm.auto import tqdm

from microprompts.cli.options import AllowOpt, CliError, MapOpt, ModelOpt, RunFailed, allow_list
from microprompts.data import Dataset, parse_map
from microprompts.data.synthesize import SynthesisReport, split_paths, write_rows, write_splits
from microprompts.evals import llm_judge
from microprompts.evals.synthesis import SynthesisConfig, synthesize
from microprompts.flows.refs import load_flow_ref
from microprompts.models import resolve_model

__all__ = ["register", "synthesize_command"]


def _rubric(value: str) -> str:
    """--judge: a rubric file's text when the path exists, else the text itself."""
    path = Path(value)
    if path.suffix in (".md", ".txt") or path.is_file():
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"cannot read --judge rubric file {value}: {exc.strerror}") from exc
    return value


def synthesize_command(
    flow: Annotated[str, typer.Argument(help="FLOW: artifact.json, path/file.py:name or module:name.")],
    n: Annotated[int, typer.Option("--n", min=1, help="Rows to keep.")],
    out: Annotated[str, typer.Option("--out", help="Output JSONL file of {inputs, output} rows.")],
    model: ModelOpt = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (each request's sample seed follows from it).")] = 0,
    seed_rows: Annotated[
        str | None, typer.Option("--seed-rows", help="A few real rows (JSON, JSONL, CSV) shown to the generator.")
    ] = None,
    judge: Annotated[
        str | None, typer.Option("--judge", help="Rubric (text or .md/.txt file): an LLM judge keeps rows it passes.")
    ] = None,
    judge_min: Annotated[float, typer.Option("--judge-min", min=0.0, max=1.0, help="The judge's pass mark.")] = 0.75,
    teacher: Annotated[
        str | None, typer.Option("--teacher", help="Model spec that labels the inputs by running the flow on it.")
    ] = None,
    per_request: Annotated[int, typer.Option("--per-request", min=1, max=50, help="Rows asked per request.")] = 5,
    budget_calls: Annotated[
        int | None,
        typer.Option(
            "--budget-calls",
            min=1,
            help="Requests of the generator and the teacher together (default: 3x what --n needs, 2x the labelling).",
        ),
    ] = None,
    max_tokens: Annotated[
        int, typer.Option("--max-tokens", min=64, help="The generator's reply limit per request.")
    ] = 2048,
    split: Annotated[
        bool, typer.Option("--split", help="Also write seeded 60/20/20 FILE.train/.dev/.test.jsonl.")
    ] = False,
    map: MapOpt = None,
    allow_module: AllowOpt = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bar on stderr.")] = True,
) -> None:
    """Synthesize rows for a flow; print the report line on stderr and one JSON line on stdout."""
    the_flow = load_flow_ref(flow, allow_list(allow_module))
    if not out.endswith(".jsonl"):
        raise CliError(f"--out must be a .jsonl file, got {out!r}")
    config = SynthesisConfig(
        n=n, seed=seed, per_request=per_request, max_calls=budget_calls, judge_min=judge_min, max_tokens=max_tokens
    )
    generator = resolve_model(model, trust=True) if model else resolve_model(None)
    seeds = list(Dataset.load(seed_rows, map=parse_map(map or []))) if seed_rows else []
    metric = llm_judge(_rubric(judge), generator) if judge else None
    teacher_model = resolve_model(teacher, trust=True) if teacher else None
    with tqdm(total=n, desc="synthesize", unit="row", disable=not progress, leave=False) as bar:

        def show(report: SynthesisReport) -> None:
            """Rows kept so far on the bar; generated, rejected and requests beside it."""
            bar.update(report.kept - bar.n)
            rejected = sum(report.rejected.values())
            bar.set_postfix(generated=report.generated, rejected=rejected, teacher=report.teacher_calls)

        result = synthesize(
            the_flow, generator, config, seed_rows=seeds, judge=metric, teacher=teacher_model, on_progress=show
        )
    typer.echo(result.report.line(), err=True)
    for reason, shown in result.report.examples.items():
        typer.echo(f"  rejected ({reason}): {shown[0]}", err=True)
    if not result.rows:
        raise RunFailed(f"no row was kept, nothing written to {out}: {result.report.line()}")
    write_rows(result.rows, out)
    summary = {"out": out, **result.report.model_dump(exclude={"examples", "situations"})}
    if split:
        sizes = write_splits(result.rows, out, seed=seed)
        summary["splits"] = {label: {"path": str(p), "rows": sizes[label]} for label, p in split_paths(out).items()}
    typer.echo(json.dumps(summary))


def register(app: typer.Typer) -> None:
    """Add the `synthesize` command to the CLI app."""
    app.command("synthesize")(synthesize_command)
