"""How much the reply format alone moves a task: each task's seed flow, unchanged but for every micro-prompt's
`reply_format` (json, lines, markers), scored on the same train + dev rows (never test) on the bench model.

This is the measurement behind the `reply_format` operator's values: a small model's answers move with the layout
it is asked to answer in, before any instruction is changed. Tasks and splits are `benchmarks/optimize.py`'s.
Writes ``results/reply_formats.json`` and ``.md``; ``--quick`` runs navigate on 10 rows.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.optimize import log, model_path, write_cells  # noqa: E402
from benchmarks.tasks.optimize_tasks import TASKS  # noqa: E402
from microprompts import Flow  # noqa: E402
from microprompts.evals import evaluate  # noqa: E402
from microprompts.models import ModelCaller  # noqa: E402
from microprompts.nodes.sections import REPLY_FORMATS  # noqa: E402


def with_format(flow: Flow, fmt: str) -> Flow:
    """The flow with every micro-prompt answering in `fmt`."""
    for node in flow.micro_prompts():
        flow = flow.replace_node(node.with_params(reply_format=fmt))
    return flow


def measure(task_name: str, fmt: str, rows: list[Any], model: str) -> dict[str, Any]:
    """The seed flow of one task in one reply format, scored on `rows` (no call cache: every call is made)."""
    task = TASKS[task_name]
    return {"task": task_name, "format": fmt, **score_flow(with_format(task.flow, fmt), task_name, rows, model)}


def score_flow(flow: Flow, task_name: str, rows: list[Any], model: str) -> dict[str, Any]:
    """`flow` scored on `rows` by the task's metric, one row at a time, no call cache: score, errors, calls,
    completion tokens per row, the three answers given most and seconds."""
    result = evaluate(
        flow, rows, TASKS[task_name].metric, model=model, caller=ModelCaller(cache=None), concurrency=1, progress=True
    )
    answers = Counter(str(r.prediction.get("answer")) if r.prediction else "(error)" for r in result.rows)
    return {
        "rows": result.n,
        "score": round(result.score, 3),
        "errors": result.errors,
        "calls": result.usage.calls,
        "completion_tokens_per_row": round(result.usage.completion_tokens / result.n, 1),
        "top_answers": dict(answers.most_common(3)),
        "seconds": round(result.seconds, 1),
    }


def table(
    cells: list[dict[str, Any]], column: tuple[str, str] = ("format", "reply format"), seconds: bool = False
) -> str:
    """The cells as a markdown table: `column` is the cell key and header of what varies, after the task; with
    `seconds`, each cell's seconds before the answers."""
    key, header = column
    extra = (" seconds |", "---:|") if seconds else ("", "")
    lines = [
        f"| task | {header} | rows | score | errors | calls | completion tokens / row |{extra[0]} most given answers |",
        f"|---|---|---:|---:|---:|---:|---:|{extra[1]}---|",
    ]
    for c in cells:
        top = ", ".join(f"{k} {v}" for k, v in c["top_answers"].items())
        timed = f" {c['seconds']} |" if seconds else ""
        lines.append(
            f"| {c['task']} | {c[key]} | {c['rows']} | {c['score']:.3f} | {c['errors']} | {c['calls']} "
            f"| {c['completion_tokens_per_row']} |{timed} {top} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure every task in every reply format, print the table, write the JSON and markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=["implicatures"])
    parser.add_argument("--formats", nargs="+", choices=REPLY_FORMATS, default=list(REPLY_FORMATS))
    parser.add_argument("--rows", type=int, default=150, help="train + dev rows per task, at most (default 150)")
    parser.add_argument("--dev", type=int, default=30, help="dev rows of the split (default 30, as optimize.py)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="qwen-0.5b", help="bench-model name")
    parser.add_argument("--quick", action="store_true", help="navigate only, 10 rows")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.tasks, args.rows = ["navigate"], 10
    out = args.out or ROOT / "benchmarks" / "results" / f"reply_formats{'.quick' if args.quick else ''}.json"
    model = f"local:{model_path(args.model)}"
    cells = []
    for task_name in args.tasks:
        splits = TASKS[task_name].splits(args.dev, 10, args.seed)  # the test split is made and never read
        rows = (list(splits.train) + list(splits.dev))[: args.rows]
        for fmt in args.formats:
            log(f"{task_name} as {fmt}: {len(rows)} train + dev rows")
            cells.append(measure(task_name, fmt, rows, model))
            log(f"  score {cells[-1]['score']}, answers {cells[-1]['top_answers']}")
    config = {
        "model": args.model,
        "model_file": Path(model).name,
        "rows": args.rows,
        "dev": args.dev,
        "seed": args.seed,
        "threads": os.environ.get("MICROPROMPTS_THREADS"),
        "quick": args.quick,
    }
    write_cells(
        out,
        "The seed flow in each reply format (train + dev rows, never test)",
        config,
        cells,
        f"Model `{config['model_file']}`, greedy; each task's seed flow from `benchmarks/optimize.py`, only "
        f"`reply_format` changed; rows: its train + dev splits (seed {args.seed}), at most {args.rows} (the "
        f"rows column says how many).",
        table(cells),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
