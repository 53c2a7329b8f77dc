"""How much itemizing a total moves a counting task: the seed flow answering its whole-number field directly, and
the same flow with `itemize` on (the model lists each counted thing with its quantity, the node adds them up),
scored on the same training rows (never dev or test) on the bench model.

This is the measurement behind the `itemize` operator and its prior. Tasks and splits are `benchmarks/optimize.py`'s.
Writes ``results/itemize.json`` and ``.md``; ``--quick`` runs 8 rows.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.optimize import log, model_path, write_cells  # noqa: E402
from benchmarks.reply_formats import score_flow  # noqa: E402
from benchmarks.reply_formats import table as score_table  # noqa: E402
from benchmarks.tasks.optimize_tasks import TASKS  # noqa: E402
from microprompts import Flow  # noqa: E402
from microprompts.nodes.itemize import itemizable  # noqa: E402


def itemized_flow(flow: Flow) -> Flow:
    """The flow with each micro-prompt's first whole-number output field itemized."""
    for node in flow.micro_prompts():
        fields = itemizable(node.output)
        if fields:
            flow = flow.replace_node(node.with_params(itemize=fields[0]))
    return flow


def table(cells: list[dict[str, Any]]) -> str:
    """The cells as a markdown table (`reply_formats`' table, by how the answer is given, with seconds)."""
    return score_table(cells, ("variant", "answer"), seconds=True)


def main(argv: list[str] | None = None) -> int:
    """Score each task's seed flow as it is and itemized, print the table, write the JSON and markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=["object_counting"])
    parser.add_argument("--rows", type=int, default=60, help="training rows per task (default 60)")
    parser.add_argument("--skip", type=int, default=40, help="training rows passed over first (default 40)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="qwen-0.5b", help="bench-model name")
    parser.add_argument("--quick", action="store_true", help="8 rows")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.rows = 8
    out = args.out or ROOT / "benchmarks" / "results" / f"itemize{'.quick' if args.quick else ''}.json"
    model = f"local:{model_path(args.model)}"
    cells = []
    for task_name in args.tasks:
        task = TASKS[task_name]
        rows = list(task.splits(30, 50, args.seed).train)[args.skip : args.skip + args.rows]
        for variant, flow in (("the number", task.flow), ("itemized", itemized_flow(task.flow))):
            log(f"{task_name}, {variant}: {len(rows)} training rows")
            cells.append({"task": task_name, "variant": variant, **score_flow(flow, task_name, rows, model)})
            log(f"  score {cells[-1]['score']}, answers {cells[-1]['top_answers']}")
    config = {
        "model": args.model,
        "model_file": Path(model).name,
        "rows": args.rows,
        "skip": args.skip,
        "seed": args.seed,
        "threads": os.environ.get("MICROPROMPTS_THREADS"),
        "quick": args.quick,
    }
    write_cells(
        out,
        "A whole-number answer written directly, and itemized (listed by the model, added up by the node)",
        config,
        cells,
        f"Model `{config['model_file']}`, greedy; each task's seed flow from `benchmarks/optimize.py`, only `itemize` "
        f"changed; rows: training rows {args.skip} to {args.skip + args.rows} of the split (seed {args.seed}), never "
        f"dev or test; one row at a time, no call cache.",
        table(cells),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
