"""The demo behind ``make demo``: optimize the seat example end to end on the embedded model.

``python -m examples.demo [--model SPEC] [--budget-calls N] [--out DIR]``. Steps: load the committed splits,
optimize the seed flow on dev under a call budget (beam search over the no-model mutators: sections,
examples, output constraints, data format, parameters), report baseline and best scores on the held-out
test split, save the artifact, run the optimized agent on one case, and show what changed in its prompt.
A second run reuses the run directory's call cache and makes no model calls.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import Any

from examples.seats.flow import flow as seats_flow
from examples.seats.metric import seat_metric
from microprompts import Budget, Flow, MicroPrompt, OptimizeResult, optimize
from microprompts.data import Dataset

DATA = Path(__file__).resolve().parent / "seats" / "data"


def load_splits() -> dict[str, Dataset]:
    """The committed train, dev and test splits of the seat example."""
    return {name: Dataset.load(DATA / f"{name}.jsonl") for name in ("train", "dev", "test")}


def optimize_step(flow: Flow, splits: dict[str, Dataset], model: str, budget: int, out: Path) -> OptimizeResult:
    """Beam search on dev under a task-model call budget; baseline and best are then scored on test."""
    return optimize(
        flow,
        train=list(splits["train"]),
        dev=list(splits["dev"]),
        test=list(splits["test"]),
        metric=seat_metric,
        search="beam",
        budget=Budget(calls=budget),
        model=model,
        run_dir=out,
        seed=0,
        concurrency=2,
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


def main(argv: list[str] | None = None) -> int:
    """Optimize, report, save, run the optimized agent once, and show the prompt changes."""
    parser = argparse.ArgumentParser(description="microprompts demo: optimize the seat example end to end.")
    parser.add_argument("--model", default="local", help="task model spec (default: the embedded model)")
    parser.add_argument("--budget-calls", type=int, default=300, help="task-model calls for the search")
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="run directory")
    args = parser.parse_args(argv)
    splits = load_splits()
    print(
        f"seat recommendation on {args.model}: train {len(splits['train'])}, dev {len(splits['dev'])}, "
        f"test {len(splits['test'])} rows; budget {args.budget_calls} task-model calls",
        flush=True,
    )
    result = optimize_step(seats_flow, splits, args.model, args.budget_calls, args.out)
    s = result.summary()
    print(f"\n{'':<10}{'dev':>8}{'test':>8}")
    print(f"{'seed':<10}{s['baseline_dev']:>8.3f}{s['baseline_test']:>8.3f}")
    print(f"{'optimized':<10}{s['best_dev']:>8.3f}{s['best_test']:>8.3f}")
    print(
        f"search: {s['candidates']} candidates, {s['calls']} model calls ({s['cached_calls']} cached), "
        f"{s['tokens']} tokens, {s['seconds']:.0f}s"
    )
    print("\nwhat changed (baseline -> best):")
    for step in result.lineage[1:]:
        m = step.get("mutation") or {}
        print(f"  {m.get('operator')}: {m.get('address')} ({m.get('note') or 'changed'}), dev {step.get('dev')}")
    artifact = args.out / "best.json"
    best = Flow.load(str(artifact))
    case = splits["test"][0]
    output = best.compile(model=args.model).invoke(dict(case.inputs))
    print(f"\nsaved {artifact}; the optimized agent on one test case:")
    print(
        json.dumps(
            {
                "preferences": case.inputs["preferences"],
                "recommended_seats": output.get("recommended_seats"),
                "expected": case.output.get("recommended_seats"),
            },
            indent=2,
        )
    )
    print("\nprompt diff (seed -> optimized):")
    print(prompt_diff(seats_flow, best, dict(case.inputs)))
    print(f"\nreport: {args.out / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
