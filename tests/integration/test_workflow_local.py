"""The workflow on the embedded model (SmolLM2), tiny: synthesize rows -> optimize on them -> export fine-tuning
JSONL. Checks behaviour (grammar-valid rows, a written artifact, valid chat lines), not quality."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from microprompts import CallCache, ModelCaller, optimize
from microprompts.data.synthesize import write_rows
from microprompts.evals import exact_match
from microprompts.evals.finetune import export_finetune, validate_file
from microprompts.evals.synthesis import SynthesisConfig, synthesize
from microprompts.models import ModelSpecError, smollm2_path
from microprompts.optimizers import Budget
from tests.integration._flow import LABELS, ROWS, topic_flow

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def _embedded_model() -> None:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (pip install 'microprompts[local]')")
    try:
        smollm2_path()
    except ModelSpecError as exc:
        pytest.skip(str(exc))


def test_synthesize_optimize_export_on_the_embedded_model(tmp_path: Path) -> None:
    caller = ModelCaller(cache=CallCache(tmp_path / "calls.sqlite"))
    config = SynthesisConfig(n=2, per_request=2, situations=2, max_calls=4, max_tokens=256, near_duplicate=99.0)
    synthesized = synthesize(topic_flow(), "local", config, seed_rows=[], caller=caller)
    report = synthesized.report
    assert report.calls + report.cached_calls >= 2 and report.generated >= 1, report.line()
    for row in synthesized.rows:  # the grammar holds the rows to the flow's schemas
        assert isinstance(row.inputs["headline"], str) and row.output["label"] in LABELS
    rows = synthesized.rows or []
    write_rows(rows, tmp_path / "syn.jsonl")
    train = [*rows, *ROWS]
    result = optimize(
        topic_flow(),
        train=train,
        dev=train,
        metric=exact_match("label"),
        budget=Budget(calls=12),
        model="local",
        optimizer_model="none",  # the no-model operators: the test's 12-call budget bounds the whole search
        run_dir=tmp_path / "run",
        progress=False,
    )
    best = tmp_path / "best.json"
    result.best.save(str(best))
    exported = export_finetune(result.best, train, exact_match("label"), tmp_path / "ft", model="local", min_score=0.0)
    (info,) = exported.files.values()
    assert info.lines == len(train) and len(validate_file(info.path)) == info.lines
    first = json.loads(Path(info.path).read_text().splitlines()[0])
    assert [m["role"] for m in first["messages"]][-1] == "assistant"
