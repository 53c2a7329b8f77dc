"""How many examples to show, and chosen how: the seat flow on one model with no examples, 3, 5 and 8 examples
chosen per row (`nearest_examples`), and 5 drawn once at random, side by side on the same rows (issue 25).

The examples come from the first 32 rows of the optimizer benchmark's seat train split (seed 0, the pool the
`nearest_examples` operator keeps); the scored rows are fresh ones from the seat generator (`--seed 11`), none of
which is in any split. Each configuration's score, seconds and tokens per row: per-row examples change the system
prompt on every row, so the model's prefix cache no longer covers them.

``python benchmarks/nearest_count.py [--rows 30] [--configs none n3 n5 n8 r5] [--model qwen-0.5b | --model local]``
prints the table and writes ``benchmarks/results/nearest_count.{json,md}``.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.optimize import RESULTS, log, model_path, write_cells  # noqa: E402
from benchmarks.tasks.optimize_tasks import TASKS  # noqa: E402
from examples.seats.cases import generate  # noqa: E402
from microprompts import ModelCaller, evaluate  # noqa: E402
from microprompts.data import Row  # noqa: E402
from microprompts.nodes import Example  # noqa: E402
from microprompts.optimizers.mutators.examples import NEAREST_POOL, labelled_examples, with_examples  # noqa: E402

CONFIGS = ("none", "n3", "n5", "n8", "r5")


def config_arg(text: str) -> str:
    """A `--configs` value, checked before any model runs: `none`, `nK` or `rK` with K from 1 to NEAREST_POOL."""
    match = re.fullmatch(r"none|([nr])([0-9]{1,2})", text)
    if match is None or (match.group(1) and not 1 <= int(match.group(2)) <= NEAREST_POOL):
        raise argparse.ArgumentTypeError(f"{text!r}: give none, nK or rK with K from 1 to {NEAREST_POOL}")
    return text


def configured(flow: Any, config: str, pool: list[Example]) -> Any:
    """The flow for one configuration (see `config_arg`): `none`, `nK` (K nearest per row) or `rK` (K drawn once,
    seed 0)."""
    if config == "none":
        return flow
    node = flow.micro_prompts()[0]
    count = int(config[1:])
    if config.startswith("n"):
        chosen = with_examples(node, pool)[0].with_params(nearest_examples=True, n_examples=count)
    else:
        chosen = with_examples(node, random.Random(0).sample(pool, count))[0]
    return flow.replace_node(chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=30, help="fresh generated rows scored per configuration")
    parser.add_argument("--seed", type=int, default=11, help="the seat generator's seed for the scored rows")
    parser.add_argument(
        "--configs", nargs="+", type=config_arg, default=list(CONFIGS), help="none, nK (nearest), rK (random draw)"
    )
    parser.add_argument("--model", default="qwen-0.5b", help="a bench model name, or `local` (the embedded model)")
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads")
    parser.add_argument("--out", type=Path, default=RESULTS / "nearest_count.json")
    args = parser.parse_args()
    os.environ["MICROPROMPTS_THREADS"] = str(args.threads)
    model = "local" if args.model == "local" else f"local:{model_path(args.model)}"
    task = TASKS["seats"]
    splits = task.splits(30, 40, 0)
    node = task.flow.micro_prompts()[0]
    pool = labelled_examples(node, splits.train)[:NEAREST_POOL]
    rows = [Row(inputs=r["inputs"], output=r["output"], id=r["id"]) for r in generate(args.rows, seed=args.seed)]
    cells = []
    for config in args.configs:
        log(f"{config}: {len(rows)} rows")
        started = time.perf_counter()
        result = evaluate(
            configured(task.flow, config, pool),
            rows,
            task.metric,
            model=model,
            caller=ModelCaller(cache=None),
            concurrency=1,
        )
        seconds = time.perf_counter() - started
        cells.append(
            {
                "config": config,
                "score": round(result.score, 4),
                "errors": result.errors,
                "seconds_per_row": round(seconds / len(rows), 2),
                "tokens_per_row": round(result.usage.tokens / len(rows), 1),
            }
        )
    lines = ["| examples | score | errors | s/row | tokens/row |", "|---|---:|---:|---:|---:|"]
    lines += [
        f"| {c['config']} | {c['score']:.3f} | {c['errors']} | {c['seconds_per_row']} | {c['tokens_per_row']} |"
        for c in cells
    ]
    intro = (
        f"Seat flow, model `{args.model}` ({args.threads} llama.cpp thread(s)), {args.rows} fresh rows (generator seed "
        f"{args.seed}), examples from the first {len(pool)} rows of the seat train split. `nK`: the K nearest per row; "
        "`rK`: K drawn once at random. No call cache; one row at a time.\n\nCommand: `.venv/bin/python "
        f"benchmarks/nearest_count.py --rows {args.rows} --configs {' '.join(args.configs)} --model {args.model}`."
    )
    write_cells(
        args.out,
        "Nearest examples: how many, and chosen how",
        vars(args) | {"out": str(args.out)},
        cells,
        intro,
        "\n".join(lines),
    )


if __name__ == "__main__":
    main()
