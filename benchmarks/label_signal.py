"""Is there a yes/no signal in the task model for an optimizer to find? A ceiling check for the yes/no tasks.

For each yes/no task of ``benchmarks/optimize.py`` (its seed instruction, its dev and test splits), this asks the
task model for one token, reads the log-probabilities of ``yes`` and ``no``, and reports how well their margin
separates the labels, zero-shot and with k label-balanced examples from train:

- AUC of the margin against the label (0.5: no signal; below: inverted);
- the accuracy of answering the majority label (what a model answering one label everywhere gets), of the
  model's own choice (margin > 0), and of a threshold fitted on dev and applied to test (a calibration a search
  could learn for free from one dev pass).

Prompts are plain chat turns (the instruction, the row's text, "Answer with one word: yes or no."), not the
flow's rendered JSON prompt: the question is what the model knows, not how one prompt asks it.
``--quick`` runs one task on a few rows. Writes ``results/label_signal.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.optimize import log, model_path, write_cells  # noqa: E402
from benchmarks.tasks.optimize_tasks import TASKS  # noqa: E402
from microprompts import MicroPrompt  # noqa: E402
from microprompts.data import Row  # noqa: E402

YES_NO = ("navigate", "sports_understanding", "implicatures")
ASK = "\nAnswer with one word: yes or no."


def _text(row: Row) -> str:
    """The row's inputs as the user turn's text."""
    return "\n".join(str(v) for v in row.inputs.values())


def _label(row: Row) -> bool:
    """Whether the row's expected answer is yes."""
    return str(row.output["answer"]).strip().lower() == "yes"


def shots(train: list[Row], k: int, seed: int) -> list[Row]:
    """k (even) train rows in a seeded order, half no and half yes, alternating."""
    order = list(train)
    random.Random(seed).shuffle(order)
    yes = [r for r in order if _label(r)][: k // 2]
    no = [r for r in order if not _label(r)][: k // 2]
    return [r for pair in zip(no, yes, strict=True) for r in pair]


def margin(llama: Any, instruction: str, examples: list[Row], row: Row) -> float:
    """log p(yes) - log p(no) for the first token of the reply (-30 for a label outside the top 20)."""
    messages = [{"role": "system", "content": instruction}]
    for ex in examples:
        messages += [
            {"role": "user", "content": _text(ex) + ASK},
            {"role": "assistant", "content": "yes" if _label(ex) else "no"},
        ]
    messages.append({"role": "user", "content": _text(row) + ASK})
    reply = llama.create_chat_completion(messages, max_tokens=1, temperature=0, logprobs=True, top_logprobs=20)
    seen: dict[str, float] = {}
    for item in reply["choices"][0]["logprobs"]["content"][0]["top_logprobs"]:
        word = item["token"].strip().lower()
        if word in ("yes", "no") and word not in seen:
            seen[word] = float(item["logprob"])
    return seen.get("yes", -30.0) - seen.get("no", -30.0)


def auc(scored: list[tuple[float, bool]]) -> float:
    """Probability that a yes row's margin exceeds a no row's (ties count half)."""
    pos = [m for m, y in scored if y]
    neg = [m for m, y in scored if not y]
    if not pos or not neg:
        return float("nan")
    return sum((p > q) + 0.5 * (p == q) for p in pos for q in neg) / (len(pos) * len(neg))


def accuracy(scored: list[tuple[float, bool]], threshold: float) -> float:
    """The share of rows whose answer, yes when the margin exceeds `threshold`, is right."""
    return sum((m > threshold) == y for m, y in scored) / len(scored)


def fit_threshold(scored: list[tuple[float, bool]]) -> float:
    """The cut between sorted margins that is most accurate on these rows (among ties, the one nearest 0, the
    model's own choice)."""
    margins = sorted({m for m, _ in scored})
    cuts = [margins[0] - 1.0] + [(a + b) / 2 for a, b in zip(margins, margins[1:], strict=False)] + [margins[-1]]
    return max(cuts, key=lambda t: (accuracy(scored, t), -abs(t)))


def measure(llama: Any, task_name: str, k: int, dev_n: int, test_n: int, seed: int) -> dict[str, Any]:
    """One task at k shots: margins on its dev and test rows, and the figures they give."""
    task = TASKS[task_name]
    splits = task.splits(dev_n, test_n, seed)
    node = next(n for n in task.flow.nodes.values() if isinstance(n, MicroPrompt))
    instruction = node.section("task").text  # type: ignore[union-attr]
    examples = shots([Row.of(r) for r in splits.train], k, seed)
    start = time.monotonic()
    dev = [(margin(llama, instruction, examples, r), _label(r)) for r in map(Row.of, splits.dev)]
    test = [(margin(llama, instruction, examples, r), _label(r)) for r in map(Row.of, splits.test)]
    threshold = fit_threshold(dev)
    majority = max(sum(y for _, y in test), sum(not y for _, y in test)) / len(test)
    return {
        "task": task_name,
        "shots": k,
        "dev_rows": len(dev),
        "test_rows": len(test),
        "test_yes": sum(y for _, y in test),
        "auc_dev": round(auc(dev), 3),
        "auc_test": round(auc(test), 3),
        "test_majority": round(majority, 3),
        "test_argmax": round(accuracy(test, 0.0), 3),
        "dev_threshold": round(threshold, 3),
        "test_dev_threshold": round(accuracy(test, threshold), 3),
        "test_answers_yes": sum(m > 0 for m, _ in test),
        "seconds": round(time.monotonic() - start, 1),
    }


def table(cells: list[dict[str, Any]]) -> str:
    """The cells as a markdown table, scores x100."""
    lines = [
        "| task | shots | AUC dev | AUC test | test: majority | test: model's choice (yes answers) "
        "| test: dev-fitted threshold |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cells:
        lines.append(
            f"| {c['task']} | {c['shots']} | {c['auc_dev']:.3f} | {c['auc_test']:.3f} | "
            f"{100 * c['test_majority']:.1f} | {100 * c['test_argmax']:.1f} ({c['test_answers_yes']}"
            f"/{c['test_rows']}) | {100 * c['test_dev_threshold']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure every task and shot count, print the table, write the JSON and markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=YES_NO, default=list(YES_NO))
    parser.add_argument("--shots", nargs="+", type=int, default=[0, 4], help="examples per prompt (default 0 4)")
    parser.add_argument("--dev", type=int, default=30, help="dev rows (default 30, as benchmarks/optimize.py)")
    parser.add_argument("--test", type=int, default=50, help="test rows (default 50)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="qwen-0.5b", help="bench-model name")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("MICROPROMPTS_THREADS") or 1))
    parser.add_argument("--quick", action="store_true", help="navigate only, 8 dev and 10 test rows, 0 shots")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if any(k < 0 or k % 2 for k in args.shots):
        parser.error("--shots must be even, non-negative numbers (half yes, half no)")
    if args.quick:
        args.tasks, args.shots, args.dev, args.test = ["navigate"], [0], 8, 10
    out = args.out or ROOT / "benchmarks" / "results" / f"label_signal{'.quick' if args.quick else ''}.json"
    from llama_cpp import Llama

    path = model_path(args.model)
    llama = Llama(path, n_ctx=4096, n_threads=args.threads, logits_all=True, verbose=False)
    cells = []
    for task_name in args.tasks:
        for k in args.shots:
            log(f"{task_name}, {k} shots: {args.dev} dev + {args.test} test rows")
            cells.append(measure(llama, task_name, k, args.dev, args.test, args.seed))
            log(
                f"  AUC test {cells[-1]['auc_test']}, majority {cells[-1]['test_majority']}, "
                f"dev-fitted threshold {cells[-1]['test_dev_threshold']}"
            )
    config = {
        "model": args.model,
        "model_file": Path(path).name,
        "dev": args.dev,
        "test": args.test,
        "seed": args.seed,
        "threads": args.threads,
        "quick": args.quick,
    }
    write_cells(
        out,
        "Yes/no signal in the task model (log p(yes) - log p(no))",
        config,
        cells,
        f"Model `{config['model_file']}`; dev {args.dev} / test {args.test} rows of `benchmarks/optimize.py`'s "
        f"splits (seed {args.seed}). Scores x100.",
        table(cells),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
