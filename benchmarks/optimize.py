"""Does the optimizer raise test scores? Baseline against best on a held-out test split, per task and search.

On the seat example, BBH ``navigate``, ``object_counting`` and ``sports_understanding`` and the SAMMO
instruction-tuning task ``implicatures`` (flows, metrics and splits: ``benchmarks/tasks/optimize_tasks.py``),
with ``../shared/tools/bench-model qwen-0.5b`` as the task model and a budget of task-model calls, it runs
``optimize(search="beam")`` and ``optimize(search="evolution")`` and records, per (task, search), the baseline
and best test score, the budgeted calls, tokens and seconds, and which mutations made the winner; then the mean
gain in points. Selection is on dev; test is scored once, at the end, for the baseline and the winner.

Each (task, search) cell has its own run directory under ``benchmarks/results/runs/`` (git-ignored) and is
written into the results as soon as it finishes, atomically, so a killed benchmark resumes: finished cells are
skipped, an unfinished one resumes its run directory (``resume=True``: no candidate scored twice, no model call
paid twice). ``--optimizer-model`` lets the same qwen model drive the content mutators (paraphrase, critique
and rewrite, instruction induction...); by default there is none and only the no-model mutators run.

``python benchmarks/optimize.py [--tasks ...] [--searches beam evolution] [--budget-calls 300] [--dev 30]
[--test 50] [--optimizer-model] [--quick]`` prints a table and writes ``benchmarks/results/optimize.{json,md}``
(``optimize.quick.*`` for ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.tasks.optimize_tasks import TASKS  # noqa: E402
from microprompts import Budget, optimize  # noqa: E402
from microprompts._io import atomic_write_text  # noqa: E402
from microprompts.optimizers import ResumeError  # noqa: E402
from microprompts.optimizers.mutators.calibrate import label_set  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
RUNS = RESULTS / "runs"
BENCH_MODEL = ROOT.parent / "shared" / "tools" / "bench-model"
SEARCHES = ("beam", "evolution")
FULL = {"budget_calls": 300, "dev": 30, "test": 50}  # the benchmark; anything less is a reduced run
QUICK = {"tasks": ["navigate"], "budget_calls": 30, "dev": 8, "test": 10}


def log(message: str) -> None:
    """A timestamped progress line on stderr."""
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def git_commit() -> dict[str, Any]:
    """HEAD, and whether the library (microprompts/, examples/) differs from it in the working tree."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "microprompts", "examples"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "library_dirty": None}
    return {"commit": head, "library_dirty": bool(dirty)}


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def provenance() -> dict[str, Any]:
    """Where and when a results file was written: the machine (CPUs, load), the commit, the time."""
    return {
        "machine": {"cpus": os.cpu_count(), "load_avg": load_average()},
        **git_commit(),
        "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write_cells(
    out: Path, title: str, config: dict[str, Any], cells: list[dict[str, Any]], intro: str, text: str
) -> None:
    """A one-table benchmark's results: JSON (config, machine, commit, time, cells) and markdown (title, intro,
    table) written atomically, then the table printed."""
    store = {"title": title, "config": config, **provenance(), "cells": cells}
    atomic_write_text(out, json.dumps(store, indent=1) + "\n")
    atomic_write_text(out.with_suffix(".md"), f"# {title}\n\n{intro}\n\n{text}\n")
    print(text)
    print(f"wrote {out} and {out.with_suffix('.md')}")


def model_path(name: str) -> str:
    """The bench model's GGUF path (downloaded by the shared tool on first use)."""
    out = subprocess.run([str(BENCH_MODEL), name], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def winning_path(result: Any) -> list[dict[str, Any]]:
    """The mutations from the baseline to the winner: operator, address touched, dev score after it."""
    steps = []
    for entry in result.lineage[1:]:
        mutation = entry.get("mutation") or {}
        steps.append(
            {
                "operator": entry.get("operator"),
                "kind": entry.get("kind"),
                "address": mutation.get("address"),
                "dev": entry.get("dev"),
                "after": str(mutation.get("after"))[:160] if mutation.get("after") is not None else None,
            }
        )
    return steps


def promotions(history: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per operator: children proposed, scored on full dev, and scored above their parent on dev."""
    dev_of = {e["id"]: e["dev"] for e in history if e.get("event") == "candidate" and e.get("dev") is not None}
    out: dict[str, dict[str, int]] = {}
    for e in history:
        if e.get("event") != "candidate" or e.get("parent") is None:
            continue
        stats = out.setdefault(e.get("operator") or "?", {"proposed": 0, "full_dev": 0, "beat_parent": 0})
        stats["proposed"] += 1
        if e.get("dev") is not None:
            stats["full_dev"] += 1
            parent_dev = dev_of.get(e["parent"])
            if parent_dev is not None and e["dev"] > parent_dev:
                stats["beat_parent"] += 1
    return dict(sorted(out.items()))


def seed_cache(run_dir: Path, share: bool) -> str | None:
    """Start a new cell's call cache as a copy of a finished sibling's (same task, other search), so requests both
    make (the baseline on dev and test, candidates both reach) are not paid twice. The budget charges a request
    whether the cache answers it or not, so the search runs exactly as on a cold cache; only seconds drop."""
    if not share:
        return None
    task = run_dir.name.split(".")[0]
    for sibling in sorted(run_dir.parent.glob(f"{task}.*/summary.json")):
        source = sibling.parent / "calls.sqlite"
        if sibling.parent == run_dir or not source.is_file():
            continue
        run_dir.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(source) as src, sqlite3.connect(run_dir / "calls.sqlite") as dst:
            src.backup(dst)
        return sibling.parent.name
    return None


def majority(task_name: str, splits: Any) -> dict[str, Any] | None:
    """Always giving train's most common label, scored on test (label tasks only): the floor every optimized cell
    should clear, since a calibrated node can always fall back to it."""
    node = TASKS[task_name].flow.micro_prompts()[0]
    found = label_set(node, splits.train)
    if found is None:
        return None
    field = found[0]
    label = Counter(r.output[field] for r in splits.train).most_common(1)[0][0]
    return {"label": label, "test": round(sum(r.output[field] == label for r in splits.test) / len(splits.test), 4)}


def run_cell(task_name: str, search: str, args: argparse.Namespace, model: str, run_dir: Path) -> dict[str, Any]:
    """One optimization (resuming its run directory if one is there) and its figures."""
    task = TASKS[task_name]
    splits = task.splits(args.dev, args.test, args.seed)
    resumed = (run_dir / "run.json").is_file()
    restarted = False
    seeded = None if resumed else seed_cache(run_dir, args.share_cache)
    load_before, started = load_average(), time.monotonic()
    kwargs = dict(
        train=splits.train,
        dev=splits.dev,
        test=splits.test,
        metric=task.metric,
        search=search,
        budget=Budget(calls=args.budget_calls),
        model=model,
        optimizer_model=args.optimizer_model_spec,
        run_dir=run_dir,
        seed=args.seed,
        progress=args.progress,
    )
    try:
        result = optimize(task.flow, resume=True, **kwargs)
    except ResumeError as exc:  # the run directory holds another run (the code or data changed): start over
        stale = run_dir.with_name(run_dir.name + f".stale-{int(time.time())}")
        log(f"{task_name}/{search}: {exc}; moved it to {stale.name}, starting over")
        shutil.move(str(run_dir), str(stale))
        resumed, restarted = False, True
        result = optimize(task.flow, resume=True, **kwargs)
    wall = time.monotonic() - started
    candidates = [e for e in result.history if e.get("event") == "candidate"]
    u = result.usage
    search_calls = u["search_calls"]  # the search's charged calls; the rest scored test (outside the budget)
    base, best = result.test_baseline or 0.0, result.test_best or 0.0
    return {
        "task": task_name,
        "search": search,
        "search_config": result.search,
        "n": {"train": len(splits.train), "dev": len(splits.dev), "test": len(splits.test)},
        "baseline_test": round(base, 4),
        "best_test": round(best, 4),
        "gain_points": round(100 * (best - base), 2),
        "baseline_dev": round(result.baseline_score, 4),
        "best_dev": round(result.best_score, 4),
        "improved": result.improved,
        "best_id": result.best_candidate.id,
        "stopped": result.stopped,
        "calls": search_calls,
        "test_calls": u["charged_calls"] - search_calls,
        "optimizer_calls": u["charged_optimizer_calls"],
        "optimizer_tokens": u.get("charged_optimizer_tokens", 0),
        "majority": majority(task_name, splits),
        "paid_calls": u["calls"] + u["optimizer_calls"],
        "cached_calls": u["cached_calls"] + u["optimizer_cached_calls"],
        "prompt_tokens": u["prompt_tokens"],
        "completion_tokens": u["completion_tokens"],
        "tokens": u["tokens"],
        "charged_tokens": u["charged_tokens"],
        "seconds": round(u["seconds"], 1),
        "seconds_this_process": round(wall, 1),
        "resumed": resumed,
        "restarted": restarted,
        "cache_seeded_from": seeded,
        "candidates": len(candidates),
        "full_dev": sum(1 for e in candidates if e.get("dev") is not None),
        "winning_path": winning_path(result),
        "operators": promotions(result.history),
        "bandit": result.operators,
        "load_avg_before": load_before,
        "load_avg_after": load_average(),
        **args.code,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run_dir": str(run_dir.relative_to(ROOT)),
    }


def mean(values: list[float]) -> float | None:
    """Mean of the values (None when there are none)."""
    return round(statistics.fmean(values), 2) if values else None


def summarize(store: dict[str, Any]) -> dict[str, Any]:
    """Mean gain over the finished cells, overall and per search; whether the planned matrix is complete."""
    cells = list(store["cells"].values())
    planned = [f"{t}/{s}" for t in store["config"]["tasks"] for s in store["config"]["searches"]]
    missing = [key for key in planned if key not in store["cells"]]
    gains = [c["gain_points"] for c in cells]
    cfg = store["config"]
    reduced = [f"{k} {cfg[k]} (full: {v})" for k, v in FULL.items() if cfg[k] != v]
    if sorted(cfg["tasks"]) != sorted(TASKS) or sorted(cfg["searches"]) != sorted(SEARCHES):
        reduced.append(f"tasks {cfg['tasks']} x searches {cfg['searches']} (full: all {len(TASKS)} tasks x both)")
    return {
        "cells_done": len(cells),
        "cells_planned": len(planned),
        "missing": missing,
        "complete": not missing,
        "full_benchmark": not missing and not reduced,
        "reduced": reduced,
        "mean_gain_points": mean(gains),
        "mean_gain_points_by_search": {
            s: mean([c["gain_points"] for c in cells if c["search"] == s]) for s in cfg["searches"]
        },
        "mean_baseline_test": mean([100 * c["baseline_test"] for c in cells]),
        "mean_best_test": mean([100 * c["best_test"] for c in cells]),
        "improved_cells": sum(1 for c in cells if c["gain_points"] > 0),
        "worse_cells": sum(1 for c in cells if c["gain_points"] < 0),
        "label_cells": sum(1 for c in cells if c.get("majority")),
        "below_majority": [
            f"{c['task']}/{c['search']}" for c in cells if c.get("majority") and c["best_test"] < c["majority"]["test"]
        ],
    }


def short_path(cell: dict[str, Any]) -> str:
    """The winning mutations, compact."""
    steps = [f"{s['operator']}@{(s['address'] or '').split('.', 1)[-1]}" for s in cell["winning_path"]]
    return " → ".join(steps) if steps else "(baseline kept)"


def markdown(store: dict[str, Any]) -> str:
    """The results as a markdown page."""
    s, cfg, m = store["summary"], store["config"], store["machine"]
    status = (
        "full benchmark"
        if s["full_benchmark"]
        else f"REDUCED run: {'; '.join(s['reduced'])}"
        if s["complete"]
        else f"PARTIAL: {s['cells_done']} of {s['cells_planned']} cells (missing: {', '.join(s['missing'])})"
    )
    lines = [
        "# Optimizer benchmark: baseline vs best on held-out test",
        "",
        f"Status: **{status}**. Task model `{cfg['model_name']}` (llama.cpp in process, {m['threads']} thread(s)); "
        f"optimizer model: {cfg['optimizer_model'] or 'none (no-model mutators only)'}; budget "
        f"{cfg['budget_calls']} task-model calls per cell; dev {cfg['dev']} / test {cfg['test']} rows; seed "
        f"{cfg['seed']}. Scores are x100; gain = best test - baseline test, in points.",
        "",
        "| task | search | baseline test | best test | gain | majority label | dev: baseline → best | calls | "
        "optimizer calls (tokens) | test calls | tokens | seconds | winning mutations |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for key in sorted(
        store["cells"],
        key=lambda k: (cfg["tasks"].index(k.split("/")[0]) if k.split("/")[0] in cfg["tasks"] else 99, k),
    ):
        c = store["cells"][key]
        floor = c.get("majority")
        shown = f"{100 * floor['test']:.1f} ({floor['label']})" if floor else "-"
        opt = f"{c.get('optimizer_calls', 0)} ({c.get('optimizer_tokens', 0):,})"
        lines.append(
            f"| {c['task']} | {c['search']} | {100 * c['baseline_test']:.1f} | {100 * c['best_test']:.1f} "
            f"| {c['gain_points']:+.1f} | {shown} | {100 * c['baseline_dev']:.1f} → {100 * c['best_dev']:.1f} "
            f"| {c['calls']} | {opt} | {c['test_calls']} | {c['tokens']:,} | {c['seconds']:.0f} | {short_path(c)} |"
        )
    by = ", ".join(f"{k} {v:+.1f}" for k, v in s["mean_gain_points_by_search"].items() if v is not None)
    below = s.get("below_majority", [])
    lines += [
        "",
        f"Mean gain over {s['cells_done']} cell(s): **{s['mean_gain_points']:+.1f} points** ({by}); mean test "
        f"{s['mean_baseline_test']:.1f} → {s['mean_best_test']:.1f}; {s['improved_cells']} cell(s) better, "
        f"{s['worse_cells']} worse; {len(below)} of {s.get('label_cells', 0)} label cell(s) below always giving "
        f"the majority label{': ' + ', '.join(below) if below else ''}."
        if s["mean_gain_points"] is not None
        else "No finished cells yet.",
        "",
        f"Machine: {m['cpus']} CPUs, load average {m['load_avg']} when this file was written (per cell: "
        f"`load_avg_before/after` in the JSON); commit(s) {', '.join(sorted(m['commits']))}. "
        "`calls` are the budgeted task-model calls of the search (the dev baseline included); `test calls` score "
        "the baseline and the winner on test, outside the budget; tokens and seconds cover both."
        + (
            " A task's second search starts from a copy of the first one's call cache (`cache_seeded_from`): the "
            "budget charges a request whether or not the cache answers it, so its search is the same as on a cold "
            "cache, but requests both searches make (the baseline on dev and test) cost it no time."
            if cfg.get("share_cache")
            else ""
        ),
    ]
    if store.get("notes"):
        lines += ["", "Notes:", *[f"- {n}" for n in store["notes"]]]
    return "\n".join(lines) + "\n"


def table(store: dict[str, Any]) -> str:
    """The printed table."""
    rows = [f"{'task':<22}{'search':<11}{'base':>6}{'best':>6}{'gain':>7}{'calls':>7}{'tokens':>9}{'secs':>7}"]
    for c in store["cells"].values():
        rows.append(
            f"{c['task']:<22}{c['search']:<11}{100 * c['baseline_test']:>6.1f}{100 * c['best_test']:>6.1f}"
            f"{c['gain_points']:>+7.1f}{c['calls']:>7}{c['tokens']:>9}{c['seconds']:>7.0f}"
        )
    s = store["summary"]
    if s["mean_gain_points"] is not None:
        rows.append(
            f"mean gain {s['mean_gain_points']:+.2f} points over {s['cells_done']}/{s['cells_planned']} "
            f"cells {s['mean_gain_points_by_search']}" + ("" if s["complete"] else " (PARTIAL)")
        )
    return "\n".join(rows)


def write(store: dict[str, Any], out: Path) -> None:
    """Refresh the summary and machine info, then write JSON and markdown atomically."""
    from microprompts.models.local import default_threads

    store["summary"] = summarize(store)
    store["machine"] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_avg": load_average(),
        "threads": default_threads(),
        "MICROPROMPTS_THREADS": os.environ.get("MICROPROMPTS_THREADS"),
        "commits": sorted({c["commit"] for c in store["cells"].values() if c.get("commit")}),
    }
    atomic_write_text(out, json.dumps(store, indent=2) + "\n")
    atomic_write_text(out.with_suffix(".md"), markdown(store))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Flags; --quick fills in the tiny defaults."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), help="tasks (default: all five)")
    parser.add_argument("--searches", nargs="+", choices=SEARCHES, default=list(SEARCHES))
    parser.add_argument("--budget-calls", type=int, help=f"task-model calls per cell (default {FULL['budget_calls']})")
    parser.add_argument("--dev", type=int, help=f"dev rows (default {FULL['dev']})")
    parser.add_argument("--test", type=int, help=f"test rows (default {FULL['test']})")
    parser.add_argument("--seed", type=int, default=0, help="split and search seed")
    parser.add_argument("--model", default="qwen-0.5b", help="bench-model name of the task model")
    parser.add_argument(
        "--optimizer-model",
        nargs="?",
        const="same",
        default=None,
        help="enable the content mutators with this model spec ('same' or no value: the task model)",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="llama.cpp threads (MICROPROMPTS_THREADS; 1 on a shared, busy machine)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny end-to-end proof: 1 task, budget 30, dev 8, test 10")
    parser.add_argument("--out", help="results JSON (default results/optimize.json, optimize.quick.json for --quick)")
    parser.add_argument("--note", action="append", default=[], help="a note stored with the results (repeatable)")
    parser.add_argument("--replace", action="store_true", help="discard an existing results file of another config")
    parser.add_argument("--progress", action="store_true", help="show the optimizer's progress bar")
    parser.add_argument(
        "--merge",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="add the cells of another results file of the same configuration (a process that ran "
        "some cells beside this one with --out), rewrite the results and exit",
    )
    parser.add_argument(
        "--redo",
        action="append",
        default=[],
        metavar="TASK/SEARCH",
        help="run this cell again from scratch (its run directory is set aside; repeatable)",
    )
    parser.add_argument(
        "--no-share-cache",
        dest="share_cache",
        action="store_false",
        help="do not start a cell's call cache from the same task's finished other search",
    )
    args = parser.parse_args(argv)
    defaults = {**FULL, "tasks": list(TASKS)} if not args.quick else QUICK
    for key in ("tasks", "budget_calls", "dev", "test"):
        if getattr(args, key) is None:
            setattr(args, key, defaults[key])
    args.out = Path(args.out) if args.out else RESULTS / ("optimize.quick.json" if args.quick else "optimize.json")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the missing cells one after another, writing the results after each."""
    args = parse_args(argv)
    args.code = git_commit()  # the code this process loaded (others may commit while it runs)
    os.environ["MICROPROMPTS_THREADS"] = str(args.threads)
    path = model_path(args.model)
    model = f"local:{path}"
    # without --optimizer-model, "none": the no-model operators only, as the committed results ran
    args.optimizer_model_spec = model if args.optimizer_model == "same" else (args.optimizer_model or "none")
    opt_label = "same as task model" if args.optimizer_model == "same" else args.optimizer_model
    config = {
        "tasks": args.tasks,
        "searches": args.searches,
        "budget_calls": args.budget_calls,
        "dev": args.dev,
        "test": args.test,
        "seed": args.seed,
        "model_name": args.model,
        "model": model,
        "optimizer_model": opt_label,
        "share_cache": args.share_cache,
    }
    store: dict[str, Any] = {"benchmark": "optimize", "config": config, "cells": {}, "notes": args.note}
    if args.out.is_file() and not args.replace:
        old = json.loads(args.out.read_text(encoding="utf-8"))
        same = {k: v for k, v in old["config"].items() if k not in ("tasks", "searches")} == {
            k: v for k, v in config.items() if k not in ("tasks", "searches")
        }
        if not same:
            print(
                f"{args.out} holds results of another configuration ({old['config']}); "
                "pass --replace to discard them or --out for another file",
                file=sys.stderr,
            )
            return 2
        store["cells"] = old["cells"]
        store["notes"] = list(dict.fromkeys(old.get("notes", []) + args.note))
        for key in ("tasks", "searches"):  # the planned matrix grows to what was asked now and before
            config[key] = list(dict.fromkeys(old["config"][key] + config[key]))
        config["tasks"] = [t for t in TASKS if t in config["tasks"]]
    if args.merge:
        for other_path in args.merge:
            other = json.loads(other_path.read_text(encoding="utf-8"))
            mismatch = {k for k in config if k not in ("tasks", "searches") and other["config"].get(k) != config[k]}
            if mismatch:
                print(f"{other_path}: another configuration ({', '.join(sorted(mismatch))})", file=sys.stderr)
                return 2
            store["cells"].update(other["cells"])
            store["notes"] = list(dict.fromkeys(store["notes"] + other.get("notes", [])))
        write(store, args.out)
        print(table(store))
        return 0
    tag = (
        f"{'quick-' if args.quick else ''}b{args.budget_calls}-d{args.dev}-t{args.test}-s{args.seed}-"
        f"{args.model}-{'optmodel' if args.optimizer_model else 'nomodel'}"
    )
    for task in args.tasks:
        for search in args.searches:
            key = f"{task}/{search}"
            run_dir = RUNS / tag / f"{task}.{search}"
            if key in args.redo:
                store["cells"].pop(key, None)
                if run_dir.exists():
                    shutil.move(str(run_dir), str(run_dir.with_name(run_dir.name + f".redone-{int(time.time())}")))
            if key in store["cells"]:
                log(f"{key}: done before, skipped")
                continue
            log(f"{key}: running (budget {args.budget_calls} calls, dev {args.dev}, test {args.test})")
            cell = run_cell(task, search, args, model, run_dir)
            store["cells"][key] = cell
            write(store, args.out)
            log(
                f"{key}: test {100 * cell['baseline_test']:.1f} -> {100 * cell['best_test']:.1f} "
                f"({cell['gain_points']:+.1f}), {cell['calls']} calls, {cell['seconds']:.0f}s; "
                f"winner: {short_path(cell)}"
            )
    write(store, args.out)
    print(table(store))
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
