"""The demo behind ``make demo``: optimize the intake flow end to end on the embedded model.

``python -m examples.demo [--model SPEC] [--budget-calls N] [--out DIR]``. Steps: load the committed splits of the
intake example (two micro-prompts and a lookup), optimize the whole flow on dev under a call budget (beam search
over the no-model mutators: examples, sections, output constraints, data format, parameters), report seed and
best scores on the held-out test split, save the artifact, show one test case the seed got wrong and the
optimized flow gets right (the first such case in test order), and what changed in each prompt. A second run
reuses the run directory's call cache and makes no model calls.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from pathlib import Path
from typing import Any

from examples.intake.flow import flow as intake_flow
from examples.intake.metric import intake_metric
from microprompts import Budget, Flow, MicroPrompt, ModelCaller, OptimizeResult, evaluate, optimize
from microprompts.data import Dataset
from microprompts.evals import EvalResult
from microprompts.models.cache import CallCache

DATA = Path(__file__).resolve().parent / "intake" / "data"
SHOWN = ("product", "customer", "team")
REPLICAS = max(1, min(2, os.cpu_count() or 1))  # copies of the embedded model, at most one per core


def load_splits() -> dict[str, Dataset]:
    """The committed train, dev and test splits of the intake example."""
    return {name: Dataset.load(DATA / f"{name}.jsonl") for name in ("train", "dev", "test")}


def optimize_step(flow: Flow, splits: dict[str, Dataset], model: str, budget: int, out: Path) -> OptimizeResult:
    """Beam search on dev under a task-model call budget; baseline and best are then scored on test. Two rows run at
    once, each on its own copy of the embedded model (one per core of a 2-core machine: ~1.5x the rows per second of
    one copy, benchmarks/results/scale.md); the replies, and so the search, are the same."""
    return optimize(
        flow,
        train=list(splits["train"]),
        dev=list(splits["dev"]),
        test=list(splits["test"]),
        metric=intake_metric,
        search="beam",
        budget=Budget(calls=budget),
        model=model,
        optimizer_model="none",
        run_dir=out,
        seed=0,
        concurrency=2,
        replicas=REPLICAS,
    )


def per_row(flow: Flow, rows: list[Any], model: str, out: Path) -> EvalResult:
    """The flow's per-row results on `rows`, answered from the run's call cache (the search scored them already)."""
    return evaluate(flow, rows, intake_metric, model=model, caller=ModelCaller(cache=CallCache(out / "calls.sqlite")))


def fixed_case(seed: EvalResult, best: EvalResult) -> int | None:
    """The first test row the seed got wrong and the optimized flow gets right (None when there is none)."""
    fixed = {row.index for row in best.rows if row.score == 1.0}
    return next(
        (row.index for row in sorted(seed.rows, key=lambda r: r.index) if row.score < 1.0 and row.index in fixed), None
    )


def prompt_diff(before: Flow, after: Flow, inputs: dict[str, Any]) -> str:
    """A unified diff of each micro-prompt's rendered system prompt, seed versus optimized."""
    lines: list[str] = []
    for name, node in after.nodes.items():
        old = before.nodes.get(name)
        if not isinstance(node, MicroPrompt) or not isinstance(old, MicroPrompt):
            continue
        a = str(old.render(inputs)[0].content).splitlines()
        b = str(node.render(inputs)[0].content).splitlines()
        lines += difflib.unified_diff(a, b, f"{name} (seed)", f"{name} (optimized)", lineterm="", n=1)
    return "\n".join(lines) or "(no prompt text changed)"


def show_case(splits: dict[str, Dataset], seed: EvalResult, best: EvalResult) -> None:
    """Print the first test case the optimization fixed: the ticket, the seed's answer, the optimized answer."""
    index = fixed_case(seed, best)
    if index is None:
        print("\nno test case that the seed got wrong is right after optimization")
        return
    case = splits["test"][index]
    by_index = {row.index: row for row in seed.rows}, {row.index: row for row in best.rows}
    pick = lambda row: {k: (row.prediction or {}).get(k) for k in SHOWN}  # noqa: E731
    print(f"\ntest case {index + 1}, the first the seed got wrong and the optimized flow gets right:")
    print(
        json.dumps(
            {
                "ticket": case.inputs["ticket"],
                "seed": pick(by_index[0][index]),
                "optimized": pick(by_index[1][index]),
                "expected": {k: case.output.get(k) for k in SHOWN},
            },
            indent=2,
            ensure_ascii=False,
        )
    )


def main(argv: list[str] | None = None) -> int:
    """Optimize, report, save, show a case the optimization fixed, and show the prompt changes."""
    parser = argparse.ArgumentParser(description="microprompts demo: optimize the intake flow end to end.")
    parser.add_argument("--model", default="local", help="task model spec (default: the embedded model)")
    parser.add_argument("--budget-calls", type=int, default=200, help="task-model calls for the search")
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="run directory")
    args = parser.parse_args(argv)
    splits = load_splits()
    print(
        f"support-ticket intake on {args.model}: identify (product, from the catalog) and customer (who signed)\n"
        f"in parallel, then a team lookup; train {len(splits['train'])}, dev {len(splits['dev'])}, "
        f"test {len(splits['test'])} rows; budget {args.budget_calls} task-model calls",
        flush=True,
    )
    result = optimize_step(intake_flow, splits, args.model, args.budget_calls, args.out)
    s = result.summary()
    print(f"\n{'':<10}{'dev':>8}{'test':>8}")
    print(f"{'seed':<10}{s['baseline_dev']:>8.3f}{s['baseline_test']:>8.3f}")
    print(f"{'optimized':<10}{s['best_dev']:>8.3f}{s['best_test']:>8.3f}")
    print(
        f"search: {s['candidates']} candidates, {s['calls']} model calls ({s['cached_calls']} cached), "
        f"{s['tokens']} tokens, {s['seconds']:.0f}s"
    )
    print("\nwhat changed (seed -> best):")
    for step in result.lineage[1:]:
        m = step.get("mutation") or {}
        print(f"  {m.get('operator')}: {m.get('address')} ({m.get('note') or 'changed'}), dev {step.get('dev')}")
    artifact = args.out / "best.json"
    best = Flow.load(str(artifact), allow=["microprompts", "examples.intake"])  # the team lookup is a function
    test = list(splits["test"])
    show_case(splits, per_row(intake_flow, test, args.model, args.out), per_row(best, test, args.model, args.out))
    print(f"\nsaved {artifact}")
    print("\nprompt diff (seed -> optimized), on the first test case:")
    print(prompt_diff(intake_flow, best, dict(splits["test"][0].inputs)))
    print(f"\nreport: {args.out / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
