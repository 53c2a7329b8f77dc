"""`configurable.model` picks the model of a compiled flow's nodes at invoke time, as it does for a bare node: the
node's own model still wins, and a configured URL (an HTTP client may have written it) gets no API key unnamed."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

import microprompts.models.spec as spec
import microprompts.nodes.runtime as runtime
from microprompts.flows import Flow
from microprompts.models import ModelCaller
from microprompts.models.spec import resolve_configured, trust_model
from microprompts.nodes import MicroPrompt, Runtime
from microprompts.testing import ScriptedChatModel


class Answer(BaseModel):
    answer: str


def _node(**params: Any) -> MicroPrompt:
    return MicroPrompt("answer", task="Answer the question.", inputs=["question"], output=Answer, **params)


def _models() -> tuple[ScriptedChatModel, ScriptedChatModel]:
    return (
        ScriptedChatModel(replies=[{"answer": "from default"}], repeat_last=True),
        ScriptedChatModel(replies=[{"answer": "from configured"}], repeat_last=True),
    )


def test_a_compiled_flow_answers_with_the_configured_model() -> None:
    default, configured = _models()
    graph = Flow("qa").then(_node()).compile(model=default, caller=ModelCaller(cache=None))
    state = graph.invoke({"question": "q?"}, config={"configurable": {"model": configured}})
    assert state["answer"] == "from configured"
    assert (configured.call_count, default.call_count) == (1, 0)
    assert graph.invoke({"question": "q?"})["answer"] == "from default"  # no config: the compiled default


def test_a_node_that_names_its_own_model_keeps_it(monkeypatch: pytest.MonkeyPatch) -> None:
    default, configured = _models()
    own = ScriptedChatModel(replies=[{"answer": "from the node"}])
    monkeypatch.setattr(runtime, "resolve_model", lambda spec: own if spec == "openai:own" else None)
    graph = Flow("qa").then(_node(model="openai:own")).compile(model=default, caller=ModelCaller(cache=None))
    state = graph.invoke({"question": "q?"}, config={"configurable": {"model": configured}})
    assert state["answer"] == "from the node" and configured.call_count == 0


def test_a_configured_url_gets_the_key_only_when_the_user_named_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    monkeypatch.setattr(spec, "_USER_URLS", set())
    monkeypatch.setattr(spec, "_ARTIFACT_URLS", set())
    monkeypatch.setattr(spec, "_RESOLVED", {})
    url = "http://127.0.0.1:9/v1"
    unnamed = resolve_configured(f"openai:m@{url}")
    assert unnamed.openai_api_key.get_secret_value() != "sk-test-secret"  # type: ignore[attr-defined]
    trust_model(f"openai:m@{url}")
    named = resolve_configured(f"openai:m@{url}")
    assert named.openai_api_key.get_secret_value() == "sk-test-secret"  # type: ignore[attr-defined]


def test_a_bare_nodes_runtime_from_its_config_treats_a_configured_url_as_untrusted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    monkeypatch.setattr(spec, "_USER_URLS", set())
    monkeypatch.setattr(spec, "_RESOLVED", {})
    runtime = Runtime.for_config({"configurable": {"model": "openai:m@http://127.0.0.1:9/v1"}})
    model = runtime.model_for(None)
    assert model.openai_api_key.get_secret_value() != "sk-test-secret"  # type: ignore[attr-defined]
    _, configured = _models()
    assert Runtime.for_config({"configurable": {"model": configured}}).model_for(None) is configured
    assert Runtime.for_config(None).default is None
