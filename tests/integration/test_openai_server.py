"""The OpenAI path against a real OpenAI-compatible server: `python -m llama_cpp.server` with SmolLM2 on 127.0.0.1.

llama.cpp's server rejects `response_format={"type": "json_schema"}`, so the caller must fall back to
`json_object` with a schema (once per model), and the reply must still parse into the enum output.
"""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage

from microprompts import CallCache, ModelCaller, evaluate, resolve_model
from microprompts.models import model_identity
from tests.integration._flow import LABELS, ROWS, label_match, topic_flow

pytestmark = pytest.mark.integration


def test_openai_spec_runs_a_flow_through_the_json_object_downgrade(llama_url, tmp_path):
    spec = f"openai:smollm2@{llama_url}"
    caller = ModelCaller(cache=CallCache(tmp_path / "calls.sqlite"), base_delay=0.0)
    first = evaluate(topic_flow(), ROWS[:1], label_match, model=spec, caller=caller)
    assert first.errors == 0, [r.error for r in first.rows]
    assert all(r.prediction["label"] in LABELS for r in first.rows)
    assert model_identity(resolve_model(spec)) in caller._json_object_only  # it downgraded
    assert first.usage.calls == 1
    assert first.usage.prompt_tokens > 50 and first.usage.completion_tokens > 0

    second = evaluate(topic_flow(), ROWS[:1], label_match, model=spec, caller=caller)
    assert second.usage.calls == 0 and second.usage.cached_calls == 1


def test_max_tokens_bounds_the_reply_of_a_real_llama_cpp_server(llama_url):
    # langchain-openai sends `max_completion_tokens`, which llama_cpp.server ignores; without `max_tokens` in the
    # body a reply runs to the end of the context.
    messages = [HumanMessage(content="Write a long story about a lighthouse keeper, in at least 500 words.")]
    done = ModelCaller(base_delay=0.0).complete(resolve_model(f"openai:smollm2@{llama_url}"), messages, max_tokens=8)
    assert done.completion_tokens <= 8
    assert done.finish_reason == "length"


def test_a_real_llama_cpp_server_scores_labels_with_the_local_models_margin(llama_url):
    # Calibrated labels through the server: its top log-probabilities where the replies part, read after the
    # json_schema downgrade; the yes-no margin is the embedded model's from its exact whole-reply log-probabilities.
    from microprompts.models import smollm2_path
    from microprompts.models.local import LocalChatModel

    replies = ['{"answer": "yes"}', '{"answer": "no"}']
    questions = ["Is Paris the capital of France?", "Is the number 7 larger than the number 100?"]
    local = LocalChatModel(model_path=str(smollm2_path()), n_threads=1)
    server = resolve_model(f"openai:smollm2@{llama_url}")
    caller = ModelCaller(cache=None, base_delay=0.0)
    for question in questions:
        messages = [HumanMessage(content=f'{question} Reply with JSON: {{"answer": "yes"}} or {{"answer": "no"}}.')]
        scored = caller.score_replies(server, messages, replies, node="judge")
        exact = caller.score_replies(local, messages, replies)
        assert all(-30.0 < s <= 0.0 for s in scored) and scored[0] != scored[1]
        # The shared start and the closing brace cancel in the margin: what is left is the label's first token.
        assert abs((scored[0] - scored[1]) - (exact[0] - exact[1])) < 0.5, (question, scored, exact)
    assert caller.meter.by_node["judge"].calls == len(questions)
