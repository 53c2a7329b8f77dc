"""TextGrad: textual gradient descent (TGD) on the system prompt (run by benchmarks/peers/.venvs/textgrad/bin/python).

Set up as TextGrad's prompt-optimization tutorial sets it up (Yuksekgonul et al. 2024, "TextGrad: Automatic
Differentiation via Text", and the project's docs): the system prompt is a ``tg.Variable`` (requires_grad, role
"system prompt to the language model") that starts as the seed instruction; the task model is a
``tg.BlackboxLLM`` with that system prompt (the row's text as the user message); the loss is a
``StringBasedFunction`` that checks the prediction (here with the shared scorer); batches of 3 training rows;
``total_loss = tg.sum(losses); total_loss.backward(); optimizer.step()`` with ``tg.TGD``; after every step the
new prompt is scored on the dev rows and reverted if it scores worse (the tutorial's validate-and-revert).
The number of steps is set so that the seed's dev evaluation plus steps x (3 + dev rows) task calls fit the
budget. Engines: ``ChatExternalClient`` on an ``openai.OpenAI`` client, one for the task model (role ``task``),
one for the backward / update engine (role ``optimizer``), one for the test run (role ``test``), at TextGrad's
defaults (temperature 0, max_tokens 2000). A step whose update the small model garbles (no improved-variable
tags) is counted and skipped rather than ending the run.
"""

from __future__ import annotations

import os
import random
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402

BATCH = 3


def main(config_path: str) -> None:
    cell = common.load_cell(config_path)
    os.environ.setdefault("TEXTGRAD_LOG_DIR", str(Path(cell["work_dir"]) / "textgrad_logs") + "/")
    started = time.time()
    result: dict = {"system": cell["system"], "task": cell["task"], "status": "failed", "config": {}}
    try:
        if cell["meta"]["kind"] != "single":
            result.update(status="n/a", error="TextGrad TGD here optimizes one prompt; this task is a multi-node flow")
            return
        result.update(run(cell, cell["meta"], result))
        result["status"] = "ok"
    except BaseException as exc:  # noqa: BLE001 - a crash is a recorded result
        result["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        result["traceback"] = traceback.format_exc()[-4000:]
    finally:
        result["seconds"] = time.time() - started
        common.write_json(cell["out"], result)


def run(cell: dict, meta: dict, result: dict) -> dict:
    import textgrad as tg
    from openai import OpenAI
    from textgrad.autograd.string_based_ops import StringBasedFunction
    from textgrad.engine.local_model_openai_api import ChatExternalClient

    urls = cell["urls"]

    def engine(role: str):
        return ChatExternalClient(
            client=OpenAI(base_url=urls[role], api_key="dummy", max_retries=2, timeout=900), model_string=cell["model"]
        )

    task_engine, opt_engine, test_engine = engine("task"), engine("optimizer"), engine("test")
    tg.set_backward_engine(opt_engine, override=True)
    metric = meta["metric"]
    threads = int(cell.get("concurrency", 4))
    dev = cell["dev"]
    budget = int(cell["budget_calls"])
    steps = max(1, (budget - len(dev)) // (BATCH + len(dev)))
    result["config"] = {
        "optimizer": "TGD",
        "parameter": "system prompt (starts as the seed instruction)",
        "batch_size": BATCH,
        "steps": steps,
        "epochs": "as many as the steps need",
        "validation": f"dev ({len(dev)} rows) after every step, revert if worse",
        "loss": "StringBasedFunction(shared scorer)",
        "engines": "ChatExternalClient defaults (temperature 0, max_tokens 2000)",
        "seed": cell["seed"],
    }

    system_prompt = tg.Variable(
        meta["instruction"], requires_grad=True, role_description="system prompt to the language model"
    )
    model = tg.BlackboxLLM(task_engine, system_prompt=system_prompt)
    optimizer = tg.TGD(parameters=[system_prompt], engine=opt_engine)

    def ask(eng, prompt_text: str, row: dict) -> str | None:
        try:
            return eng(row["text"], system_prompt=prompt_text)
        except Exception:  # noqa: BLE001 - a failed call scores 0
            return None

    def evaluate(prompt_text: str, rows: list[dict], eng) -> tuple[float, dict]:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            preds = list(pool.map(lambda r: ask(eng, prompt_text, r), rows))
        values = [common.score(metric, r, p) for r, p in zip(rows, preds, strict=False)]
        return sum(values) / max(1, len(values)), {r["id"]: p for r, p in zip(rows, preds, strict=False)}

    def eval_fn_for(row: dict):
        def check(prediction, ground_truth_answer):
            return int(common.score(metric, row, prediction.value) >= 1.0)

        return StringBasedFunction(
            check, function_purpose="The runtime of string-based function that checks if the prediction is correct."
        )

    t0 = time.time()
    best_dev, _ = evaluate(system_prompt.value, dev, task_engine)
    history = [{"step": 0, "dev": best_dev, "prompt": system_prompt.value}]
    rng = random.Random(cell["seed"])
    order: list[dict] = []
    update_failures = 0
    for step in range(1, steps + 1):
        if len(order) < BATCH:
            order = list(cell["train"])
            rng.shuffle(order)
        batch, order = order[:BATCH], order[BATCH:]
        previous = system_prompt.value
        optimizer.zero_grad()
        losses = []
        for row in batch:
            x = tg.Variable(row["text"], requires_grad=False, role_description="query to the language model")
            y = tg.Variable(str(row["answer"]), requires_grad=False, role_description="correct answer for the query")
            response = model(x)
            losses.append(eval_fn_for(row)(inputs=dict(prediction=response, ground_truth_answer=y)))
        try:
            total_loss = tg.sum(losses)
            total_loss.backward()
            optimizer.step()
        except Exception as exc:  # noqa: BLE001 - a garbled update is skipped, the run goes on
            update_failures += 1
            system_prompt.set_value(previous)
            history.append({"step": step, "error": f"{type(exc).__name__}: {exc}"[:300]})
            continue
        dev_score, _ = evaluate(system_prompt.value, dev, task_engine)
        kept = dev_score >= best_dev
        history.append({"step": step, "dev": dev_score, "kept": kept, "prompt": system_prompt.value[:1500]})
        if kept:
            best_dev = dev_score
        else:
            system_prompt.set_value(previous)
    fit_seconds = time.time() - t0
    _, predictions = evaluate(system_prompt.value, cell["test"], test_engine)
    return {
        "predictions": predictions,
        "dev_score": best_dev,
        "best_prompt": system_prompt.value[:4000],
        "fit_seconds": fit_seconds,
        "own_view": {"steps": steps, "update_failures": update_failures, "history": history},
    }


if __name__ == "__main__":
    main(sys.argv[1])
