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
