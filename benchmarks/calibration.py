"""Calibrated labels against generated ones on the yes/no tasks (issue 25, item 5), side by side on one model.

Per task, on the optimizer benchmark's splits (`benchmarks/tasks/optimize_tasks.py`, seed 0) and its task model
(Qwen 0.5B): the seed flow's test score as generated; always giving train's majority label; the labels scored by
log-probability with no bias; and with per-label biases fitted on the dev rows (the `calibrate` operator's fit, run
here on dev as the issue asks). Every call goes through one call cache, so the unbiased and the calibrated rows share
their scoring calls; the table says how many each part paid.

``python benchmarks/calibration.py [--tasks implicatures navigate sports_understanding] [--dev 30] [--test 50]
[--model qwen-0.5b | --model local]`` prints the table and writes ``benchmarks/results/calibration.{json,md}``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.optimize import RESULTS, log, majority, model_path, write_cells  # noqa: E402
from benchmarks.tasks.optimize_tasks import TASKS  # noqa: E402
from microprompts import CallCache, ModelCaller, evaluate  # noqa: E402
from microprompts.models import resolve_model  # noqa: E402
from microprompts.nodes import Calibration  # noqa: E402
from microprompts.optimizers.mutators.calibrate import fit_biases, label_set  # noqa: E402

LABEL_TASKS = ("implicatures", "navigate", "sports_understanding")


def run_task(name: str, model: Any, dev: int, test: int, seed: int, cache: CallCache) -> dict[str, Any]:
    """One task's row of the table."""
    task = TASKS[name]
    splits = task.splits(dev, test, seed)
    node = task.flow.micro_prompts()[0]
    found = label_set(node, splits.train)
    if found is None:
        return {"task": name, "status": "no label field"}
    field, labels = found
    caller = ModelCaller(cache=cache)
    log(f"{name}: seed flow on {len(splits.test)} test rows (generated)")
    generated = evaluate(task.flow, splits.test, task.metric, model=model, caller=caller, concurrency=1)
    floor = majority(name, splits) or {"label": None, "test": 0.0}
    log(f"{name}: scoring {labels} on {len(splits.dev)} dev rows")
    zeros = Calibration(field=field, labels=tuple(labels), bias=tuple(0.0 for _ in labels))
    texts = node.calibrated_replies(zeros)
    before = caller.meter.total.calls
    scores = [caller.score_replies(model, node.render(r.inputs), texts, node=node.name) for r in splits.dev]
    gold = [labels.index(r.output[field]) if r.output[field] in labels else -1 for r in splits.dev]
    bias, dev_accuracy = fit_biases(scores, gold)
    dev_calls = caller.meter.total.calls - before
    fitted = zeros.model_copy(update={"bias": tuple(bias)})
    out: dict[str, Any] = {
        "task": name,
        "labels": labels,
        "majority_label": floor["label"],
        "majority_test": round(floor["test"], 3),
        "generated_test": round(generated.score, 3),
        "generated_errors": generated.errors,
        "generated_calls": generated.usage.calls,
        "fit_dev_accuracy": round(dev_accuracy, 3),
        "fit_calls": dev_calls,
        "bias": dict(zip(labels, bias, strict=True)),
    }
    for key, calibration in (("logprob", zeros), ("calibrated", fitted)):
        flow = task.flow.replace_node(node.with_params(calibration=calibration))
        log(f"{name}: {key} on {len(splits.test)} test rows")
        result = evaluate(flow, splits.test, task.metric, model=model, caller=caller, concurrency=1)
        out[f"{key}_test"] = round(result.score, 3)
        out[f"{key}_calls"] = result.usage.calls
        out[f"{key}_errors"] = result.errors
    return out


def table(cells: list[dict[str, Any]]) -> str:
    """The results as a markdown table."""
    lines = [
        "| task | majority label (train's) | generated (seed flow) | log-prob, no bias | calibrated on dev | "
        "calls: generated / fit on dev / scored test |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for c in cells:
        if c.get("status"):
            lines.append(f"| {c['task']} | {c['status']} | | | | |")
            continue
        lines.append(
            f"| {c['task']} | {c['majority_test']:.3f} ({c['majority_label']}) | {c['generated_test']:.3f} | "
            f"{c['logprob_test']:.3f} | **{c['calibrated_test']:.3f}** | "
            f"{c['generated_calls']} / {c['fit_calls']} / {c['logprob_calls'] + c['calibrated_calls']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(LABEL_TASKS), choices=sorted(TASKS))
    parser.add_argument("--model", default="qwen-0.5b", help="bench-model name, or a model spec such as local")
    parser.add_argument("--dev", type=int, default=30)
    parser.add_argument("--test", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS / "calibration.json")
    args = parser.parse_args(argv)
    os.environ["MICROPROMPTS_THREADS"] = str(args.threads)
    spec = args.model if ":" in args.model or args.model == "local" else f"local:{model_path(args.model)}"
    model = resolve_model(spec)
    cells = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = CallCache(Path(tmp) / "calls.sqlite")
        for name in args.tasks:
            cells.append(run_task(name, model, args.dev, args.test, args.seed, cache))
            log(f"{name}: {cells[-1]}")
    intro = (
        f"Model `{args.model}`, dev {args.dev} and test {args.test} rows of the optimizer benchmark's splits (seed "
        f"{args.seed}); `python benchmarks/calibration.py`. Scores are the task metric on test; the calibrated "
        "column's biases were fitted on dev (`mutators/calibrate.py`'s `fit_biases`), never below the best constant "
        "label there."
    )
    write_cells(
        args.out,
        "Calibrated labels (issue 25, item 5)",
        vars(args) | {"out": str(args.out)},
        cells,
        intro,
        table(cells),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
