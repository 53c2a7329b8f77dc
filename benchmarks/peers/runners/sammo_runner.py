"""SAMMO 0.3.3 BeamSearch on the seed instruction (run by benchmarks/peers/.venvs/sammo/bin/python).

Configured as SAMMO's instruction-tuning study configures its own method (Schnabel & Neville 2024, and the
`examples/paper_instruction_tuning` script of microsoft/sammo): a raw-rendered meta-prompt of
``Instructions: <seed>``, the output labels when the task has a label set, the input and ``Output:``; a bag of
mutators (InduceInstructions from the in-context examples, APO with 2 gradients, 1 step and no rewrites,
Paraphrase); BeamSearch with depth 4, beam width 4, 2 mutations per beam, add_previous. The one change for our
budget: ``max_evals`` caps the candidates evaluated so that candidates x dev rows stays within the task-model
call budget. Candidates are scored on the dev rows (selection on dev, as for every system). The runner keeps an
in-memory call cache, as the study does with its persistent cache, so APO's re-run of a scored candidate is free.

Calls are routed by role: a candidate run on data rows goes to the ``task`` URL, a meta-prompt with no data
(induce, gradient, paraphrase) to the ``optimizer`` URL, and the final test run to the ``test`` URL.
"""

from __future__ import annotations

import contextvars
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402

MAX_TOKENS = 1024
ROLE: contextvars.ContextVar[str | None] = contextvars.ContextVar("role", default=None)


def main(config_path: str) -> None:
    cell = common.load_cell(config_path)
    meta = cell["meta"]
    started = time.time()
    result: dict = {"system": cell["system"], "task": cell["task"], "status": "failed", "config": {}}
    try:
        if meta["kind"] != "single":
            result.update(status="n/a", error="SAMMO optimizes one prompt; this task is a multi-node flow")
            return
        result.update(run(cell, meta, result))
        result["status"] = "ok"
    except BaseException as exc:  # noqa: BLE001 - a crash is a recorded result
        result["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        result["traceback"] = traceback.format_exc()[-4000:]
    finally:
        result["seconds"] = time.time() - started
        common.write_json(cell["out"], result)


def run(cell: dict, meta: dict, result: dict) -> dict:
    import sammo.components
    from sammo.base import EvaluationScore
    from sammo.components import Output
    from sammo.data import DataTable
    from sammo.dataformatters import PlainFormatter
    from sammo.instructions import InputData, MetaPrompt, Paragraph
    from sammo.mutators import APO, BagOfMutators, InduceInstructions, Paraphrase
    from sammo.runners import OpenAIChat
    from sammo.search import BeamSearch
    from sammo.store import InMemoryDict
    from sammo.throttler import AtMost

    urls = cell["urls"]

    class RoutedRunner(OpenAIChat):
        def _rest_url(self):  # noqa: D401 - route each call by the role of what is running
            return urls[ROLE.get() or "optimizer"].rstrip("/") + self.SUFFIX

        async def _execute_request(self, request, fingerprint, priority=0):
            if request.get("max_tokens") is None:  # SAMMO sends none: cap a small model's runaway replies
                request = {**request, "max_tokens": MAX_TOKENS}
            return await super()._execute_request(request, fingerprint, priority)

    original_arun = Output.arun

    async def routed_arun(self, runner, data=None, *args, **kwargs):
        current = ROLE.get()
        role = current if current == "test" else ("task" if data is not None else "optimizer")
        token = ROLE.set(role)
        try:
            return await original_arun(self, runner, data, *args, **kwargs)
        finally:
            ROLE.reset(token)

    sammo.components.Output.arun = routed_arun

    rows_by_text = {r["text"]: r for split in ("train", "dev", "test") for r in cell[split]}
    metric = meta["metric"]

    def objective(y_true, y_pred) -> EvaluationScore:
        inputs = y_true.inputs.raw_values
        preds = y_pred.outputs.normalized_values(on_empty="")
        values, mistakes = [], []
        for i, (text, pred) in enumerate(zip(inputs, preds, strict=False)):
            value = common.score(metric, rows_by_text[text], pred)
            values.append(value)
            if value < 1.0:
                mistakes.append(i)
        return EvaluationScore(sum(values) / max(1, len(values)), mistakes)

    def table(rows):
        return DataTable(
            [r["text"] for r in rows], [r["answer"] for r in rows], constants={"instructions": meta["instruction"]}
        )

    d_train, d_dev, d_test = table(cell["train"]), table(cell["dev"]), table(cell["test"])
    incontext = common.read_jsonl(Path(cell["data_dir"]) / "incontext.jsonl")
    d_incontext = table(incontext)
    labels = meta.get("labels")

    def search_space():
        formatter = PlainFormatter(all_labels=labels or d_train.outputs.unique(), orient="item")
        parts = [
            Paragraph("Instructions: "),
            Paragraph(meta["instruction"], reference_id="instructions"),
            Paragraph("\n"),
        ]
        if labels:
            parts.append(Paragraph(f"Output labels: {', '.join(labels)}\n"))
        parts += [Paragraph(InputData()), Paragraph("Output: ")]
        prompt = MetaPrompt(parts, render_as="raw", data_formatter=formatter)
        return Output(prompt.with_extractor("raise"), minibatch_size=1, on_error="empty_result")

    budget = int(cell["budget_calls"])
    max_evals = max(1, budget // max(1, len(cell["dev"])))
    config = {
        "search": "BeamSearch",
        "depth": 4,
        "beam_width": 4,
        "mutations_per_beam": 2,
        "n_initial_candidates": 1,
        "add_previous": True,
        "max_evals": max_evals,
        "note": (
            "n_initial_candidates=1: the study samples 4 starting points from its 4-variant one_of; "
            "our search space is the one seed instruction"
        ),
        "mutators": "BagOfMutators(InduceInstructions(d_incontext), APO(num_gradients=2, steps_per_gradient=1, "
        "num_rewrites=0), Paraphrase, sample_for_init_candidates=True)",
        "fit_on": f"dev ({len(cell['dev'])} rows)",
        "prompt": "raw: Instructions / Output labels / Input / Output:",
        "runner": "OpenAIChat(model_id='qwen', rate_limit=AtMost(4, 'running'), cache=InMemoryDict(), timeout=1800)",
        "max_tokens": f"{MAX_TOKENS} where SAMMO sends none",
        "source": "microsoft/sammo examples/paper_instruction_tuning, method 'sammo'",
    }
    result["config"] = config
    runner = RoutedRunner(
        model_id="qwen",
        api_config={"api_key": "dummy", "base_url": urls["optimizer"]},
        cache=InMemoryDict(),
        rate_limit=AtMost(4, "running"),
        timeout=1800,
        max_retries=3,
    )
    mutators = BagOfMutators(
        search_space,
        InduceInstructions("#instructions", d_incontext),
        APO("#instructions content", None, num_gradients=2, steps_per_gradient=1, num_rewrites=0),
        Paraphrase("#instructions"),
        sample_for_init_candidates=True,
    )
    search = BeamSearch(
        runner,
        mutators,
        objective,
        maximize=True,
        depth=4,
        mutations_per_beam=2,
        n_initial_candidates=1,
        beam_width=4,
        add_previous=True,
        max_evals=max_evals,
    )
    t0 = time.time()
    search.fit(d_dev)
    fit_seconds = time.time() - t0
    token = ROLE.set("test")
    try:
        pred = search.transform(d_test)
    finally:
        ROLE.reset(token)
    preds = pred.outputs.normalized_values(on_empty="")
    predictions = {row["id"]: p for row, p in zip(cell["test"], preds, strict=False)}
    best = search.best
    return {
        "predictions": predictions,
        "dev_score": float(search.best_score) if search.best_score is not None else None,
        "best_prompt": str(search.best_prompt)[:4000] if best else None,
        "own_view": {
            "candidates_evaluated": len(search._state.get("fit", [])),
            "costs": str(runner.costs) if hasattr(runner, "costs") else None,
        },
        "fit_seconds": fit_seconds,
    }


if __name__ == "__main__":
    main(sys.argv[1])
