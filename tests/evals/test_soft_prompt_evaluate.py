"""`evaluate` runs an artifact whose node holds a soft prompt (tiny random `hf:` model): the tensors come from the
artifact's folder, every row runs, and the scores equal an in-process run of the flow that was saved."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the [soft] extra (torch==2.13.0, transformers, peft) is not installed")
pytest.importorskip("peft", reason="the [soft] extra (peft) is not installed")

from microprompts import Flow
from microprompts.data.dataset import Row
from microprompts.evals import evaluate
from microprompts.evals.metrics import exact_match
from microprompts.models.client import ModelCaller
from tests.fakes.tiny_soft import QUESTIONS, plain_node, soft_setup


def test_evaluate_runs_a_soft_prompt_artifact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROPROMPTS_THREADS", "1")
    setup = soft_setup(tmp_path)
    artifact = tmp_path / "artifact" / "flow.json"
    setup.flow.save(artifact)
    rows = [Row(inputs={"question": q}, output={"output": "yes"}) for q in QUESTIONS]
    before = evaluate(setup.flow, rows, exact_match("output"), model=setup.model, caller=ModelCaller(cache=None))
    loaded = evaluate(
        Flow.load(artifact),
        rows,
        exact_match("output"),
        model=f"hf:{setup.model.model_path}",
        caller=ModelCaller(cache=None),
        concurrency=2,
    )
    assert loaded.errors == 0 and loaded.n == len(QUESTIONS)
    assert [r.prediction for r in loaded.rows] == [r.prediction for r in before.rows]
    plain = evaluate(Flow("plain").then(plain_node()), rows, model=setup.model, caller=ModelCaller(cache=None))
    virtual = [a.usage.prompt_tokens - b.usage.prompt_tokens for a, b in zip(loaded.rows, plain.rows, strict=True)]
    assert virtual == [4] * len(QUESTIONS)  # each call carries the 4 virtual tokens, counted as input tokens
