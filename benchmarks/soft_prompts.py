"""Soft prompts against hard prompts on a small open model run by torch (issue 23): each task's seed micro-prompt as
written, then with k trained virtual tokens (PEFT prompt tuning, initialised from the seed prompt's text, and prefix
tuning, and a LoRA adapter; trained from the train rows, early-stopped on dev), all scored on the same test rows with
the same model and no call cache.

Model: SmolLM2-135M-Instruct (`hf:local`, the embedded GGUF dequantized to float32, about 0.6 GB resident): it
trains at a fraction of a second a step on one thread, where Qwen 0.5B costs about four times that on 2 shared cores.
The optimizer runs twice per task under the same call budget: hard-prompt operators only (its best flow is "the best
hard prompt"), and with the soft_prompt operator too (training counted in seconds and examples, as its own cost).
Distillation compresses the best hard prompt (the teacher) into k tokens in front of its task section alone (the
student, KL to the teacher's next-token distributions). For the search rows, "train s" is the search's seconds and
"train examples" its task-model calls.
Writes ``results/soft_prompts.json`` and ``.md``; ``--quick`` is a smoke run (one task, a few rows, a few steps).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.optimize import log, winning_path, write_cells  # noqa: E402
from benchmarks.tasks.optimize_tasks import TASKS  # noqa: E402
from microprompts.evals import evaluate  # noqa: E402
from microprompts.models import ModelCaller  # noqa: E402
from microprompts.models.soft_prompt import LoraSpec  # noqa: E402
from microprompts.models.soft_train import SoftTrainConfig  # noqa: E402
from microprompts.models.spec import resolve_model  # noqa: E402
from microprompts.models.torch_model import TorchChatModel  # noqa: E402
from microprompts.optimizers import Budget, optimize  # noqa: E402
from microprompts.optimizers.soft import distill_node_soft_prompt, short_node, train_node_soft_prompt  # noqa: E402

METHODS = ("prompt_tuning", "prefix_tuning", "lora", "distill")
Save = Callable[[dict[str, Any]], None]  # keeps one finished cell (the results are rewritten each time)


def peak_mb() -> float:
    """The process's peak resident memory so far, in MB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def score(task_name: str, flow: Any, rows: list[Any], model: TorchChatModel) -> dict[str, Any]:
    """One flow scored on `rows` with `model` (no call cache: every call is made)."""
    task = TASKS[task_name]
    result = evaluate(flow, rows, task.metric, model=model, caller=ModelCaller(cache=None), concurrency=1)
    calls = max(1, result.usage.calls)
    return {
        "test_score": round(result.score, 3),
        "test_rows": result.n,
        "errors": result.errors,
        "prompt_tokens_per_call": round(result.usage.prompt_tokens / calls, 1),
        "eval_seconds": round(result.seconds, 1),
    }


def run_task(task_name: str, model: TorchChatModel, args: argparse.Namespace, workdir: Path, save: Save) -> None:
    """The seed hard prompt, then each method with each k, on one task; each cell saved as it is done."""
    task = TASKS[task_name]
    splits = task.splits(args.dev, args.test, args.seed)
    train = splits.train[: args.train]
    node = task.flow.micro_prompts()[0]
    log(f"{task_name}: seed prompt on {len(splits.test)} test rows")
    seed = {"task": task_name, "variant": "seed hard prompt", **score(task_name, task.flow, splits.test, model)}
    save({**seed, "train_seconds": 0.0, "train_examples": 0, "peak_mb": peak_mb()})
    hard = task.flow
    for soft, calls in ((False, args.hard_calls), (True, args.soft_search_calls)):
        if calls <= 0:
            continue
        flow, cell = searched(task_name, model, train, splits, calls, soft, workdir / f"{task_name}-search-{soft}")
        save(cell)
        hard = hard if soft else flow
    teacher = hard.micro_prompts()[0]  # the best hard prompt (the seed's when no search ran) is distilled
    variants = [(m, k) for m in args.methods if m in ("prompt_tuning", "prefix_tuning", "distill") for k in args.k]
    variants += [("lora", 0)] if "lora" in args.methods else []
    for method, k in variants:
        config = SoftTrainConfig(
            method="prompt_tuning" if method == "distill" else method,
            num_virtual_tokens=max(1, k),
            lora=LoraSpec(rank=args.lora_rank),
            steps=args.steps,
            lr=args.lora_lr if method == "lora" else args.lr,
            eval_every=args.eval_every,
            seed=args.seed,
            max_target_tokens=args.max_target,
        )
        distilled = "best hard prompt" if args.hard_calls > 0 else "seed prompt"
        label = {
            "lora": f"LoRA r={args.lora_rank}",
            "distill": f"{distilled} distilled, k={k} (task section only)",
        }.get(method, f"{method.replace('_', ' ')} k={k}")
        log(f"{task_name}: {label}, {args.steps} steps on {len(train)} train rows, dev {len(splits.dev)}")
        flow = task.flow
        if method == "distill":
            run = distill_node_soft_prompt(teacher, model, train, splits.dev, workdir / task_name, config)
            flow = hard.replace_node(short_node(teacher))
        else:
            run = train_node_soft_prompt(node, model, train, splits.dev, workdir / task_name, config)
        tuned = model.with_soft_prompt(run.ref, workdir / task_name)
        cell = {"task": task_name, "variant": label, **score(task_name, flow, splits.test, tuned)}
        cell.update(
            train_seconds=round(run.report.seconds, 1),
            train_examples=run.report.examples,
            best_step=run.report.best_step,
            dev_loss=[run.report.initial_dev_loss, run.report.best_dev_loss],
            peak_mb=peak_mb(),
        )
        save(cell)


def searched(
    task_name: str, model: TorchChatModel, train: list[Any], splits: Any, calls: int, soft: bool, run_dir: Path
) -> tuple[Any, dict[str, Any]]:
    """The optimizer's best flow under `calls` task-model calls (beam search, the task model alone) and its test
    cell: hard-prompt operators only, or with the soft_prompt operator too (it needs the run directory)."""
    task = TASKS[task_name]
    label = "optimizer with the soft_prompt operator" if soft else "best hard prompt (optimizer)"
    log(f"{task_name}: {label}, {calls} calls")
    result = optimize(
        task.flow,
        train=train,
        dev=splits.dev,
        metric=task.metric,
        model=model,
        optimizer_model="none",
        budget=Budget(calls=calls),
        run_dir=run_dir if soft else None,
        progress=False,
    )
    summary = result.summary()
    cell = {"task": task_name, "variant": label, **score(task_name, result.best, splits.test, model)}
    cell.update(
        train_seconds=round(summary["seconds"], 1),
        train_examples=summary["calls"],
        dev=[summary["baseline_dev"], summary["best_dev"]],
        path=winning_path(result),
        peak_mb=peak_mb(),
    )
    return result.best, cell


def table(cells: list[dict[str, Any]]) -> str:
    """The results as a markdown table."""
    head = "| task | variant | test score | errors | prompt tokens/call | train s | train examples | peak MB |"
    lines = [head, "|" + "---|" * 8]
    for c in cells:
        if c.get("status"):
            lines.append(f"| {c['task']} | {c['variant']} | {c['status']} | | | | | |")
            continue
        lines.append(
            f"| {c['task']} | {c['variant']} | {c['test_score']:.3f} ({c['test_rows']}) | {c['errors']} | "
            f"{tokens_cell(c)} | {c['train_seconds']} | {c['train_examples']} | {c['peak_mb']} |"
        )
    return "\n".join(lines)


def tokens_cell(cell: dict[str, Any]) -> str:
    """A cell's prompt tokens per call, marked where they were not counted by the run itself: recounted afterwards
    (the run's estimate beside it) or an estimate without the virtual tokens (calibrated cells before 265fcac)."""
    tokens = f"{cell['prompt_tokens_per_call']}"
    if "prompt_tokens_estimate" in cell:
        return f"{tokens} (recounted; run's estimate {cell['prompt_tokens_estimate']})"
    if str(cell.get("prompt_tokens_counted", "")).startswith("estimate"):
        return f"{tokens} (estimate, no virtual tokens)"
    return tokens


def intro_text(config: dict[str, Any]) -> str:
    """The results page's opening: model, threads and the command(s) that ran."""
    commands = config["command"] if isinstance(config["command"], list) else [config["command"]]
    ran = "; ".join(f"`{c}`" for c in commands)
    side = " (one process per task, side by side, then `--merge`)" if len(commands) > 1 else ""
    return (
        f"Seed micro-prompt vs. the optimizer's best hard prompt, prompt tuning, prefix tuning, LoRA and distillation "
        f"on `{config['model']}` ({config['threads']} torch thread(s) a process); command(s){side}: {ran}. "
        "Prompt tokens per call count the virtual tokens; where a run estimated them (calibrated cells scored before "
        "the count came from the model), the cell says so, and recounted cells give the exact count over the test "
        "rows. "
        "Peak MB is the process's peak RSS so far."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["implicatures", "object_counting"], choices=sorted(TASKS))
    parser.add_argument("--model", default="hf:local", help="an hf: spec (GGUF file or checkpoint folder)")
    parser.add_argument(
        "--methods", nargs="+", default=list(METHODS), choices=list(METHODS), help="what to train (all by default)"
    )
    parser.add_argument("--lora-rank", type=int, default=8)
    parser.add_argument("--max-target", type=int, default=32, help="reply tokens trained on (and distilled)")
    parser.add_argument("--lora-lr", type=float, default=5e-3)
    parser.add_argument("--k", type=int, nargs="+", default=[4, 16], help="virtual tokens")
    parser.add_argument(
        "--hard-calls", type=int, default=100, help="the hard-prompt search's task-model calls (0: none)"
    )
    parser.add_argument(
        "--soft-search-calls", type=int, default=100, help="the search with the soft_prompt operator's calls (0: none)"
    )
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--lr", type=float, default=3e-2)
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--train", type=int, default=200, help="at most this many train rows")
    parser.add_argument("--dev", type=int, default=30)
    parser.add_argument("--test", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("MICROPROMPTS_THREADS") or 1))
    parser.add_argument("--quick", action="store_true", help="smoke: implicatures, 8 train, 4 dev, 4 test, k=4")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        default=None,
        metavar="FILE",
        help="write the cells of these results files (runs of one task each, side by side) as one, and exit",
    )
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.k, args.steps, args.eval_every = ["implicatures"], [4], 6, 3
        args.train, args.dev, args.test, args.hard_calls, args.soft_search_calls = 8, 4, 4, 12, 0
    name = "soft_prompts.quick.json" if args.quick else "soft_prompts.json"
    out = args.out or ROOT / "benchmarks" / "results" / name
    if args.merge:
        stores = [json.loads(path.read_text(encoding="utf-8")) for path in args.merge]
        cells = [cell for store in stores for cell in store["cells"]]
        commands = [store["config"].get("command", "?") for store in stores]
        config = {**stores[0]["config"], "command": commands}
        config["tasks"] = list(dict.fromkeys(c["task"] for c in cells))
        write_cells(out, "Soft prompts (issue 23)", config, cells, intro_text(config), table(cells))
        return
    started = time.perf_counter()
    model = resolve_model(args.model)
    if not isinstance(model, TorchChatModel):
        raise SystemExit(f"--model must be an hf: spec, got {args.model!r}")
    model = model.model_copy(update={"n_threads": args.threads, "max_tokens": 64})
    model.checkpoint()
    log(f"loaded {args.model} in {time.perf_counter() - started:.1f} s ({args.threads} thread(s))")
    cells: list[dict[str, Any]] = []
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "merge"}
    config["command"] = " ".join([".venv/bin/python benchmarks/soft_prompts.py", *sys.argv[1:]])
    intro = intro_text(config)

    def save(cell: dict[str, Any]) -> None:
        cells.append(cell)
        write_cells(out, "Soft prompts (issue 23)", config, cells, intro, table(cells))

    with tempfile.TemporaryDirectory(prefix="soft_prompts.") as tmp:
        for task_name in args.tasks:
            run_task(task_name, model, args, Path(tmp), save)


if __name__ == "__main__":
    main()
