"""The small-model question (issue 22): is a flow optimized on a small model as good as the same flow unoptimized on a
model three times larger, at a fraction of its time per row?

Per task (the seat flow; the two-step HotpotQA flow of the peers benchmark), four cells on the same test rows: the seed
flow and the optimized flow, each on the small and on the large model (``../shared/tools/bench-model qwen-0.5b`` and
``qwen-1.5b`` by default, llama.cpp in process, the same threads). Each cell gives the test score and the seconds per
test row, measured with no call cache (every call made), one row at a time; the optimizations use the no-model
operators and the same budget. Target: optimized small >= unoptimized large at under half its seconds per row.

``python benchmarks/small_model.py [--tasks seats hotpot] [--budget-calls 300] [--dev 30] [--test 40] [--out F]``
writes ``results/small_model.json`` (or ``F``) and ``.md`` after every cell (a killed run resumes its optimizations
from their run directories); ``--quick`` is a smoke run on the embedded model (both sizes), a few rows and calls.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.optimize import RESULTS, RUNS, log, model_path, write_cells  # noqa: E402
from benchmarks.peers.tasks import prepare  # noqa: E402
from benchmarks.peers.tasks.flows import metric_for, seed_flow  # noqa: E402
from benchmarks.tasks.optimize_tasks import TASKS  # noqa: E402
from microprompts import Budget, ModelCaller, evaluate, optimize  # noqa: E402
from microprompts.data import Row  # noqa: E402
from microprompts.models import resolve_model  # noqa: E402


def hotpot(dev: int, test: int, seed: int) -> tuple[Any, Any, list[Row], list[Row], list[Row]]:
    """The peers benchmark's HotpotQA flow, metric and rows (its split of the 200 AFlow questions)."""
    with tempfile.TemporaryDirectory(prefix="small_model.") as tmp:
        meta = prepare("hotpot", tmp, 50, dev, test, seed)
        parts = {
            name: [
                Row(inputs=r["inputs"], output=r["output"], id=r["id"])
                for r in map(json.loads, (Path(tmp) / f"{name}.jsonl").read_text(encoding="utf-8").splitlines())
            ]
            for name in ("train", "dev", "test")
        }
    return seed_flow(meta), metric_for(meta), parts["train"], parts["dev"], parts["test"]


def task_parts(name: str, dev: int, test: int, seed: int) -> tuple[Any, Any, list[Any], list[Any], list[Any]]:
    """`(flow, metric, train, dev, test)` of a task."""
    if name == "hotpot":
        return hotpot(dev, test, seed)
    task = TASKS[name]
    splits = task.splits(dev, test, seed)
    return task.flow, task.metric, splits.train, splits.dev, splits.test


def timed_test(flow: Any, rows: list[Any], metric: Any, model: Any) -> dict[str, Any]:
    """Test score and seconds per row, every call made (no cache), one row at a time."""
    started = time.perf_counter()
    result = evaluate(flow, rows, metric, model=model, caller=ModelCaller(cache=None), concurrency=1)
    seconds = time.perf_counter() - started
    return {
        "test": round(result.score, 4),
        "errors": result.errors,
        "seconds_per_row": round(seconds / max(1, len(rows)), 2),
        "calls_per_row": round(result.usage.calls / max(1, len(rows)), 2),
        "tokens_per_row": round(result.usage.tokens / max(1, len(rows)), 1),
    }


def run_task(name: str, sizes: dict[str, str], args: argparse.Namespace, done: dict[str, Any], save: Any) -> None:
    """The four cells of one task (those not already in `done`)."""
    flow, metric, train, dev, test = task_parts(name, args.dev, args.test, args.seed)
    for size, spec in sizes.items():
        model = resolve_model(spec)
        for optimized in (False, True):
            key = f"{name}/{size}/{'optimized' if optimized else 'seed'}"
            if key in done:
                log(f"{key}: done before, skipped")
                continue
            cell: dict[str, Any] = {
                "key": key,
                "task": name,
                "model": size,
                "flow": "optimized" if optimized else "seed",
            }
            best = flow
            if optimized:
                log(f"{key}: optimizing ({args.budget_calls} calls)")
                result = optimize(
                    flow,
                    train=train,
                    dev=dev,
                    metric=metric,
                    model=model,
                    optimizer_model="none",
                    budget=Budget(calls=args.budget_calls),
                    run_dir=RUNS / "small_model" / f"{name}.{size}.b{args.budget_calls}-d{args.dev}-s{args.seed}",
                    resume=True,
                    seed=args.seed,
                    progress=False,
                )
                summary = result.summary()
                best = result.best
                cell.update(dev=[summary["baseline_dev"], summary["best_dev"]], search_calls=summary["calls"])
                cell["search_seconds"] = round(summary["seconds"], 1)
            log(f"{key}: test on {len(test)} rows")
            cell.update(timed_test(best, test, metric, model))
            done[key] = cell
            save()


def table(cells: dict[str, Any]) -> str:
    """Per task: the four cells side by side, and the target's two ratios."""
    head = "| task | model | flow | test | errors | s/row | calls/row | tokens/row | dev (seed → best) | search calls |"
    lines = [head, "|" + "---|" * 10]
    for c in cells.values():
        dev = f"{c['dev'][0]:.3f} → {c['dev'][1]:.3f}" if c.get("dev") else ""
        lines.append(
            f"| {c['task']} | {c['model']} | {c['flow']} | {c['test']:.3f} | {c['errors']} | {c['seconds_per_row']} | "
            f"{c['calls_per_row']} | {c['tokens_per_row']} | {dev} | {c.get('search_calls', '')} |"
        )
    for task in dict.fromkeys(c["task"] for c in cells.values()):
        small, large = cells.get(f"{task}/small/optimized"), cells.get(f"{task}/large/seed")
        if small and large:
            lines.append(
                f"\n{task}: optimized small {small['test']:.3f} vs unoptimized large {large['test']:.3f} "
                f"({'at or above' if small['test'] >= large['test'] else 'below'}), at "
                f"{small['seconds_per_row'] / max(1e-9, large['seconds_per_row']):.2f}x its seconds per row "
                "(target: at or above, under 0.5x)."
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["seats", "hotpot"], choices=["seats", "hotpot"])
    parser.add_argument("--small", default="qwen-0.5b", help="bench-model name of the small model")
    parser.add_argument("--large", default="qwen-1.5b", help="bench-model name of the large model")
    parser.add_argument("--budget-calls", type=int, default=300)
    parser.add_argument("--dev", type=int, default=30)
    parser.add_argument("--test", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads (the same for both models)")
    parser.add_argument("--quick", action="store_true", help="smoke: the embedded model as both, seats, 12 calls")
    parser.add_argument("--out", type=Path, help="results JSON (default small_model.json, .quick.json for --quick)")
    args = parser.parse_args()
    os.environ["MICROPROMPTS_THREADS"] = str(args.threads)
    if args.quick:
        args.tasks, args.budget_calls, args.dev, args.test = ["seats"], 12, 4, 3
        sizes = {"small": "local", "large": "local"}
    else:
        sizes = {"small": f"local:{model_path(args.small)}", "large": f"local:{model_path(args.large)}"}
    out = args.out or RESULTS / ("small_model.quick.json" if args.quick else "small_model.json")
    old = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {}
    config = {k: v for k, v in vars(args).items() if k not in ("quick", "out")}
    cells: dict[str, Any] = {c["key"]: c for c in old.get("cells", [])} if old.get("config") == config else {}
    intro = (
        f"Small `{args.small}` against large `{args.large}` (llama.cpp in process, {args.threads} thread(s) each), "
        f"budget {args.budget_calls} task-model calls per optimization (no-model operators), dev {args.dev}, test "
        f"{args.test} rows, seed {args.seed}; command: `.venv/bin/python benchmarks/small_model.py "
        f"{' '.join(sys.argv[1:])}`. Seconds per row: the test run, no call cache, one row at a time."
    )

    def save() -> None:
        write_cells(out, "Small model or large (issue 22)", config, list(cells.values()), intro, table(cells))

    for name in args.tasks:
        run_task(name, sizes, args, cells, save)
    save()  # a re-run with every cell done rewrites the tables (and the command) from the JSON


if __name__ == "__main__":
    main()
