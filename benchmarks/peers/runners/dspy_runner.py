"""DSPy 3.4 MIPROv2 and GEPA (run by benchmarks/peers/.venvs/dspy/bin/python).

The program is what a DSPy user would write for the task: one ``dspy.Predict`` whose signature instructions are
the seed instruction, reading the row's text (``input``) and writing ``answer`` typed as the microprompts flow
types it (``Literal[labels]`` where the task has labels, ``list[str]`` seats, else ``str``); for HotpotQA a
``dspy.Module`` of two ``dspy.Predict`` steps (question + paragraphs -> facts: list[str]; question + facts ->
answer), the same pipeline as the microprompts flow. Task LM = role ``task``, prompt / reflection LM = role
``optimizer``, the final test run = role ``test``: three ``dspy.LM`` objects on the same server. DSPy's memory
cache stays on (its default, within a run); its disk cache is off so no run reuses another's calls.

MIPROv2: ``auto="light"`` sizes (n=6 candidates; minibatching off for a valset of 50 rows or fewer, as light
mode decides) with ``num_trials`` set so that (num_trials + 1) full dev evaluations plus bootstrapping fit the
task-call budget; other arguments at their defaults (max_bootstrapped_demos=4, max_labeled_demos=4, all
proposer aids on). GEPA: ``max_metric_calls`` = budget / predictors (one metric call = one program run), other
arguments at their defaults (reflection_minibatch_size=3, pareto selection, merge on), with textual feedback from
the shared scorer. Both: ``max_errors`` raised so a reply the small model garbles scores 0 instead of stopping
the run (DSPy's default of 10 would end most runs on this model after ten unparsable replies).
"""

from __future__ import annotations

import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402

MAX_ERRORS = 10**6
MAX_TOKENS = 1024  # DSPy sets no limit by default: cap a small model's runaway replies


def main(config_path: str) -> None:
    cell = common.load_cell(config_path)
    started = time.time()
    result: dict = {"system": cell["system"], "task": cell["task"], "status": "failed", "config": {}}
    try:
        result.update(run(cell, cell["meta"], result))
        result["status"] = "ok"
    except BaseException as exc:  # noqa: BLE001 - a crash is a recorded result
        result["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        result["traceback"] = traceback.format_exc()[-4000:]
    finally:
        result["seconds"] = time.time() - started
        common.write_json(cell["out"], result)


def build_program(dspy, meta: dict):
    task = meta["task"]
    if meta["kind"] == "pipeline":
        select_sig = dspy.Signature(
            {
                "question": (str, dspy.InputField()),
                "paragraphs": (str, dspy.InputField()),
                "facts": (list[str], dspy.OutputField()),
            },
            meta["instructions"][0],
        )
        answer_sig = dspy.Signature(
            {
                "question": (str, dspy.InputField()),
                "facts": (list[str], dspy.InputField()),
                "answer": (str, dspy.OutputField()),
            },
            meta["instructions"][1],
        )

        class Hotpot(dspy.Module):
            def __init__(self):
                super().__init__()
                self.select_facts = dspy.Predict(select_sig)
                self.answer = dspy.Predict(answer_sig)

            def forward(self, question, paragraphs):
                facts = self.select_facts(question=question, paragraphs=paragraphs).facts
                return self.answer(question=question, facts=facts)

        return Hotpot(), ("question", "paragraphs"), "answer"
    labels = meta.get("labels")
    if task == "seats":
        out_type, out_name = list[str], "recommended_seats"
    elif labels:
        out_type, out_name = Literal[tuple(labels)], "answer"
    else:
        out_type, out_name = str, "answer"
    sig = dspy.Signature(
        {"input": (str, dspy.InputField()), out_name: (out_type, dspy.OutputField())}, meta["instruction"]
    )
    return dspy.Predict(sig), ("input",), out_name


def run(cell: dict, meta: dict, result: dict) -> dict:
    import dspy

    urls = cell["urls"]

    def lm(role: str, **kw):
        return dspy.LM(
            f"openai/{cell['model']}", api_base=urls[role], api_key="dummy", max_tokens=MAX_TOKENS, timeout=1800, **kw
        )

    task_lm = lm("task", temperature=0.0)
    opt_lm = lm("optimizer", temperature=1.0) if cell["system"] == "dspy-gepa" else lm("optimizer")
    test_lm = lm("test", temperature=0.0)
    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=True)
    dspy.configure(lm=task_lm, max_errors=MAX_ERRORS)
    program, input_keys, out_name = build_program(dspy, meta)
    metric_kind = meta["metric"]
    rows_by_id = {r["id"]: r for s in ("train", "dev", "test") for r in cell[s]}

    def example(row: dict):
        fields = {k: row["inputs"][k] for k in input_keys} if meta["kind"] == "pipeline" else {"input": row["text"]}
        gold = row["output"]["recommended_seats"] if out_name == "recommended_seats" else row["answer"]
        return dspy.Example(row_id=row["id"], **{out_name: gold}, **fields).with_inputs(*input_keys)

    def value(gold, pred) -> float:
        got = getattr(pred, out_name, None) if pred is not None else None
        return common.score(metric_kind, rows_by_id[gold.row_id], got)

    def metric(gold, pred, trace=None):
        return value(gold, pred)

    def gepa_metric(gold, pred, trace=None, pred_name=None, pred_trace=None):
        got = getattr(pred, out_name, None) if pred is not None else None
        row = rows_by_id[gold.row_id]
        return dspy.Prediction(
            score=common.score(metric_kind, row, got), feedback=common.feedback(metric_kind, row, got)
        )

    train = [example(r) for r in cell["train"]]
    dev = [example(r) for r in cell["dev"]]
    budget = int(cell["budget_calls"])
    n_preds = len(program.predictors())
    threads = int(cell.get("concurrency", 4))
    t0 = time.time()
    if cell["system"] == "dspy-mipro":
        n = 6 if budget >= 200 else 3
        reserve = 7 * n * n_preds  # bootstrapping the demo sets, roughly
        num_trials = max(1, (budget - reserve) // (len(dev) * n_preds) - 1)
        result["config"] = {
            "optimizer": "MIPROv2",
            "auto": None,
            "num_candidates": n,
            "num_trials": num_trials,
            "minibatch": False,
            "max_bootstrapped_demos": 4,
            "max_labeled_demos": 4,
            "init_temperature": 1.0,
            "num_threads": threads,
            "max_tokens": MAX_TOKENS,
            "max_errors": MAX_ERRORS,
            "seed": cell["seed"],
            "why": "light-mode n; trials sized to the budget; light mode "
            "turns minibatching off for a valset <= 50 rows",
        }
        optimizer = dspy.MIPROv2(
            metric=metric,
            prompt_model=opt_lm,
            task_model=task_lm,
            auto=None,
            num_candidates=n,
            num_threads=threads,
            max_errors=MAX_ERRORS,
            seed=cell["seed"],
        )
        best = optimizer.compile(program, trainset=train, valset=dev, num_trials=num_trials, minibatch=False)
    elif cell["system"] == "dspy-gepa":
        max_calls = max(len(dev) + 1, budget // n_preds)
        result["config"] = {
            "optimizer": "GEPA",
            "auto": None,
            "max_metric_calls": max_calls,
            "reflection_minibatch_size": 3,
            "candidate_selection_strategy": "pareto",
            "use_merge": True,
            "max_tokens": MAX_TOKENS,
            "reflection_lm": "qwen (role optimizer), temperature 1.0",
            "num_threads": threads,
            "seed": cell["seed"],
            "feedback": "common.feedback",
        }
        optimizer = dspy.GEPA(
            metric=gepa_metric,
            max_metric_calls=max_calls,
            reflection_lm=opt_lm,
            num_threads=threads,
            seed=cell["seed"],
            track_stats=True,
            log_dir=str(Path(cell["work_dir"]) / "gepa"),
        )
        best = optimizer.compile(program, trainset=train, valset=dev)
    else:
        raise ValueError(cell["system"])
    fit_seconds = time.time() - t0

    def predict(row: dict):
        try:
            with dspy.context(lm=test_lm):
                pred = best(**example(row).inputs())
            got = getattr(pred, out_name, None)
            return row["id"], (got if isinstance(got, (list, str)) or got is None else str(got)), None
        except Exception as exc:  # noqa: BLE001 - a row the program cannot answer scores 0
            return row["id"], None, f"{type(exc).__name__}: {exc}"[:300]

    with ThreadPoolExecutor(max_workers=threads) as pool:
        outs = list(pool.map(predict, cell["test"]))
    prompts = []
    for name, pred in best.named_predictors():
        prompts.append(f"## {name}\n{pred.signature.instructions}\n({len(pred.demos)} demos)")
    errors = [e for _, _, e in outs if e]
    return {
        "predictions": {rid: p for rid, p, _ in outs},
        "test_errors": len(errors),
        "test_error_examples": errors[:3],
        "best_prompt": "\n".join(prompts)[:4000],
        "fit_seconds": fit_seconds,
        "own_view": {
            "task_lm_calls": len(task_lm.history),
            "optimizer_lm_calls": len(opt_lm.history),
            "test_lm_calls": len(test_lm.history),
        },
    }


if __name__ == "__main__":
    main(sys.argv[1])
