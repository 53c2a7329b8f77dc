"""The demo behind ``make demo``: the seat example on the embedded model, scored on the committed test split.

``python -m examples.demo [--model SPEC] [--limit N]``. Steps: load the data, evaluate the seed flow,
(optimize: a placeholder until the optimizer lands), print a table and one sample prediction.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from examples.seats.flow import flow as seats_flow
from examples.seats.metric import seat_metric
from microprompts import EvalResult, Flow, evaluate
from microprompts.data import Dataset

DATA = Path(__file__).resolve().parent / "seats" / "data"


def load_splits() -> dict[str, Dataset]:
    """The committed train, dev and test splits of the seat example."""
    return {name: Dataset.load(DATA / f"{name}.jsonl") for name in ("train", "dev", "test")}


def evaluate_step(flow: Flow, rows: Dataset, model: str) -> EvalResult:
    """Run the flow on every row on `model` and score it with the seat metric."""
    return evaluate(flow, list(rows), seat_metric, model=model, concurrency=2)


# ---------------------------------------------------------------------------------------------------------------
# OPTIMIZER STEP: the place where `optimize(...)` is wired in once microprompts.optimizers lands. It takes the seed
# flow and the train/dev splits and returns the best flow found (or None to keep the seed flow).
# ---------------------------------------------------------------------------------------------------------------
def optimize_step(flow: Flow, splits: dict[str, Dataset], model: str) -> Flow | None:
    """Not wired yet: returns None, so the demo evaluates the seed flow only."""
    return None


def table(rows: list[tuple[str, EvalResult]]) -> str:
    """A fixed-width table: one line per evaluated flow with score, calls, tokens and seconds."""
    head = f"{'flow':<14}{'score':>7}{'rows':>6}{'errors':>8}{'calls':>7}{'cached':>8}{'tokens':>9}{'seconds':>9}"
    lines = [head, "-" * len(head)]
    for label, r in rows:
        s = r.summary()
        tokens = s["prompt_tokens"] + s["completion_tokens"]
        lines.append(f"{label:<14}{s['score']:>7.3f}{s['n']:>6}{s['errors']:>8}{s['calls']:>7}"
                     f"{s['cached_calls']:>8}{tokens:>9}{s['seconds']:>9.1f}")
    return "\n".join(lines)


def sample(result: EvalResult) -> dict[str, Any]:
    """One row's inputs, prediction, expected output and score, for printing."""
    row = result.rows[0]
    return {"preferences": row.inputs.get("preferences"), "available_seats": row.inputs.get("available_seats"),
            "predicted": row.prediction, "expected": row.expected, "score": round(row.score, 3),
            "error": row.error}


def main(argv: list[str] | None = None) -> int:
    """Evaluate the seed flow (and, once wired, the optimized one) on the test split; print the results."""
    parser = argparse.ArgumentParser(description="microprompts demo: the seat example on the embedded model.")
    parser.add_argument("--model", default="local", help="model spec (default: the embedded model)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N test rows")
    args = parser.parse_args(argv)
    splits = load_splits()
    test = splits["test"][: args.limit] if args.limit else splits["test"]
    print(f"seat recommendation on {args.model}: {len(test)} test rows", flush=True)
    results = [("seed", evaluate_step(seats_flow, test, args.model))]
    best = optimize_step(seats_flow, splits, args.model)
    if best is not None:
        results.append(("optimized", evaluate_step(best, test, args.model)))
    print(table(results))
    print("sample prediction:")
    print(json.dumps(sample(results[-1][1]), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
