"""The model loads at start-up, in the background: `/health` answers at once with `loading`, then `ok`; `/ready`
and the run endpoints answer 503 with Retry-After until the model is loaded (Kubernetes' readiness answer), and a
model that cannot load is reported, not retried on every request."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from pydantic import PrivateAttr

from microprompts.models import LocalChatModel
from microprompts.serve._warm import Readiness, flow_models, warm_model
from microprompts.serve.app import create_app
from microprompts.serve.settings import ServeSettings
from tests.serve.helpers import SEAT_INPUT, InstantChatModel, flow_reply, seat_flow

KEY = "k" * 24


class SlowLoadingModel(InstantChatModel):
    """A model whose `warm()` (its weights loading) blocks until the test lets it finish, or fails."""

    _gate: threading.Event = PrivateAttr(default_factory=threading.Event)
    _fail: str | None = PrivateAttr(default=None)
    _loads: int = PrivateAttr(default=0)

    def warm(self) -> None:
        self._loads += 1
        assert self._gate.wait(30), "the test never let the model load"
        if self._fail:
            raise RuntimeError(self._fail)


def _client(model: SlowLoadingModel, **settings: Any) -> TestClient:
    app = create_app(seat_flow(), model=model, store=None, settings=ServeSettings(**settings))
    return TestClient(app, raise_server_exceptions=False, base_url="http://127.0.0.1")


def _slow_model() -> SlowLoadingModel:
    return SlowLoadingModel(reply=flow_reply(seat_flow()))


def test_health_says_loading_and_runs_answer_503_until_the_model_is_loaded():
    model = _slow_model()
    client = _client(model)
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "loading"
    ready = client.get("/ready")
    assert ready.status_code == 503 and ready.json()["status"] == "loading" and ready.headers["retry-after"] == "5"
    for path, body in [("/invoke", {"input": SEAT_INPUT}), ("/stream", {"input": SEAT_INPUT})]:
        refused = client.post(path, json=body)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "5", path
        assert refused.json()["error"]["type"] == "loading"
    assert client.post("/batch", json={"inputs": [SEAT_INPUT]}).json()["error"]["type"] == "loading"
    assert client.get("/schema").status_code == 200  # what needs no model answers meanwhile

    model._gate.set()
    assert client.app.state.readiness.wait(30)
    assert client.get("/health").json()["status"] == "ok"
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ok" and "load_seconds" in ready.json()
    answered = client.post("/invoke", json={"input": SEAT_INPUT})
    assert answered.status_code == 200 and answered.json()["output"]["top_seat"] == "economy_14A_window"
    assert model._loads == 1  # loaded once, at start-up, not per request


def test_a_model_that_fails_to_load_is_reported_not_retried():
    model = _slow_model()
    model._fail = "no weights at /nowhere.gguf"
    model._gate.set()
    client = _client(model)
    assert client.app.state.readiness.wait(30)
    health = client.get("/health")
    assert health.status_code == 503 and health.json()["status"] == "failed"
    assert "no weights" in health.json()["error"]
    ready = client.get("/ready")
    assert ready.status_code == 503 and "retry-after" not in ready.headers
    refused = client.post("/invoke", json={"input": SEAT_INPUT})
    assert refused.status_code == 503 and refused.json()["error"]["type"] == "model_unavailable"
    assert "no weights" in refused.json()["error"]["message"] and model._loads == 1


def test_the_probes_need_no_api_key():
    model = _slow_model()
    model._gate.set()
    client = _client(model, api_key=KEY)
    assert client.app.state.readiness.wait(30)
    assert client.get("/health").status_code == 200 and client.get("/ready").status_code == 200
    assert client.post("/invoke", json={"input": SEAT_INPUT}).status_code == 401


def test_a_flow_on_models_that_load_nothing_is_ready_at_once(make_client):
    client = make_client()
    assert client.app.state.readiness.state == "ok"
    assert client.get("/ready").status_code == 200


def test_the_embedded_model_is_warmed_with_a_one_token_call(monkeypatch):
    calls: list[dict[str, Any]] = []

    def fake_generate(self: LocalChatModel, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        calls.append(kwargs)
        return InstantChatModel()._generate(messages)

    monkeypatch.setattr(LocalChatModel, "_generate", fake_generate)
    model = LocalChatModel(model_path="/nowhere/model.gguf")
    readiness = Readiness([model, model])  # the same model twice loads once
    assert readiness.state == "loading"
    readiness.start()
    assert readiness.wait(30) and readiness.state == "ok"
    assert len(calls) == 1 and calls[0]["max_tokens"] == 1
    warm_model(InstantChatModel())  # a model with nothing to load: nothing happens


def test_flow_models_resolves_each_spec_and_the_default():
    model = InstantChatModel()
    assert flow_models(seat_flow(), model) == [model]


@pytest.mark.integration
def test_the_embedded_model_loads_at_start_and_answers():
    pytest.importorskip("llama_cpp")
    flow = seat_flow()
    app = create_app(flow, model="local", store=None)
    client = TestClient(app, raise_server_exceptions=False, base_url="http://127.0.0.1")
    assert app.state.readiness.wait(120), "the embedded model did not load"
    assert client.get("/ready").json()["status"] == "ok"
    answered = client.post("/invoke", json={"input": SEAT_INPUT})
    assert answered.status_code in (200, 502), answered.text  # a tiny model may answer badly, but it answers
