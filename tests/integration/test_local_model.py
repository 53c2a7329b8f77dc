"""The embedded model (SmolLM2 in process) runs a real flow: grammar-constrained enum output, usage, cache."""

from __future__ import annotations

import importlib.util

import pytest

from microprompts import CallCache, ModelCaller, evaluate, resolve_model
from microprompts.models import LocalChatModel, ModelSpecError, smollm2_path
from tests.integration._flow import LABELS, LINES_ROWS, ROWS, label_match, topic_flow

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def local_model() -> LocalChatModel:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (pip install 'microprompts[local]')")
    try:
        smollm2_path()
    except ModelSpecError as exc:
        pytest.skip(str(exc))
    model = resolve_model("local")
    assert isinstance(model, LocalChatModel)
    return model


@pytest.fixture
def formats(monkeypatch) -> list:
    """The `response_format` of every call the embedded model gets in the test (None: free text)."""
    seen: list = []
    generate = LocalChatModel._generate

    def spy(self, messages, stop=None, run_manager=None, **kwargs):
        seen.append(kwargs.get("response_format"))
        return generate(self, messages, stop, run_manager, **kwargs)

    monkeypatch.setattr(LocalChatModel, "_generate", spy)
    return seen


def test_local_model_runs_a_flow_with_a_json_schema_grammar_and_the_cache(local_model, tmp_path, formats):
    cache = CallCache(tmp_path / "calls.sqlite")
    first = evaluate(topic_flow(), ROWS, label_match, model="local", caller=ModelCaller(cache=cache))
    assert first.errors == 0, [r.error for r in first.rows]
    schema = topic_flow().nodes["topic"].output_schema()
    assert formats == [{"type": "json_object", "schema": schema}] * 2  # llama.cpp turns it into a grammar
    assert schema["properties"]["label"]["enum"] == list(LABELS)
    for row in first.rows:
        assert row.prediction["label"] in LABELS
        (trace,) = row.traces
        assert len(trace.replies) == 1  # the grammar made the first reply valid: no repair
        assert trace.usage.prompt_tokens > trace.rendered_tokens // 2 > 0
    assert first.usage.calls == 2 and first.usage.cached_calls == 0
    assert first.usage.prompt_tokens > 50 and first.usage.completion_tokens > 0

    second = evaluate(topic_flow(), ROWS, label_match, model="local", caller=ModelCaller(cache=cache))
    assert second.usage.calls == 0 and second.usage.cached_calls == 2
    assert [r.prediction for r in second.rows] == [r.prediction for r in first.rows]


def test_local_model_answers_in_lines_without_a_grammar_and_every_reply_is_read_or_refused_cleanly(
    local_model, tmp_path, formats
):
    flow = topic_flow()
    node = flow.nodes["topic"].with_params(reply_format="lines")
    flow = flow.evolve(nodes={"topic": node})
    caller = ModelCaller(cache=CallCache(tmp_path / "calls.sqlite"))
    result = evaluate(flow, LINES_ROWS, label_match, model="local", caller=caller)
    assert formats and all(f is None for f in formats)  # free text: no grammar
    assert result.n == len(LINES_ROWS)
    # Without a grammar SmolLM2 often runs on into another "Example" or echoes the headline instead of answering.
    # How many of these rows it answers depends on the CPU's llama.cpp kernels (1 of 2 on one machine, 0 of 2 and
    # 1 of 6 on another), so the test asks only what the code promises: each row is a label in the schema, or a
    # clean parse failure naming the allowed values after one repair turn, never a crash.
    for row in result.rows:
        assert not row.traces[0].replies[0].lstrip().startswith("{")
        if row.error:
            assert row.error.startswith("OutputParseError") and "'sports'" in row.error
            assert len(row.traces[0].replies) == 2
        else:
            assert row.prediction["label"] in LABELS


def test_llm_judge_on_the_embedded_model_gives_grammar_valid_verdicts_and_caches_them(local_model, tmp_path):
    from microprompts.data import Row
    from microprompts.evals import llm_judge

    cache = CallCache(tmp_path / "judge.sqlite")
    rows = [
        Row(inputs={"question": "What is the capital of France?"}, output={"answer": "Paris"}, id=str(i))
        for i in range(2)
    ]
    predictions = [{"answer": "Paris"}, {"answer": "Berlin"}]
    metric = llm_judge("The answer names the right city.", "local", caller=ModelCaller(cache=cache))
    scores = [metric(row, p) for row, p in zip(rows, predictions, strict=True)]
    for score in scores:
        assert score.value in {0.0, 0.25, 0.5, 0.75, 1.0}, score  # the grammar kept the grade in 1..5
        assert score.feedback.startswith("judge ") and not score.feedback.startswith("judge failed"), score
    assert metric.meter.snapshot().calls >= 2
    again = llm_judge("The answer names the right city.", "local", caller=ModelCaller(cache=cache))
    assert [again(row, p) for row, p in zip(rows, predictions, strict=True)] == scores
    assert again.meter.snapshot().calls == 0
