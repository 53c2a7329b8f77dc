"""The served agent's protections, in process: the bearer API key (401), the Host names (400), JSON bodies only
(415), the per-request deadline (504, the slot held until the worker ends, the run recorded once), `/runs` in
bounded pages, and each run's input stored once."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

import pytest

from microprompts.serve import RunRecord
from microprompts.serve._guard import bearer_token, host_name
from microprompts.serve.settings import ServeSettings, allowed_host_names
from tests.serve.helpers import HANG_MARKER, SEAT_INPUT, InstantChatModel, seat_flow
from tests.serve.test_app import assert_error

KEY = "k-test-0123456789abcdef-SENTINEL"
AUTH = {"authorization": f"Bearer {KEY}"}


# --- the API key ------------------------------------------------------------------------------------------------
def test_a_non_loopback_bind_needs_a_key():
    for host in ("0.0.0.0", "::", "192.168.1.4", "agent.example.com"):
        error = ServeSettings(host=host).bind_error()
        assert error is not None and "--api-key" in error and "MICROPROMPTS_API_KEY" in error
        assert ServeSettings(host=host, api_key=KEY).bind_error() is None
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert ServeSettings(host=host).bind_error() is None


def test_keys_are_checked_and_never_shown():
    with pytest.raises(ValueError, match="too short") as caught:
        ServeSettings(api_key="abc123")
    assert "abc123" not in str(caught.value)
    with pytest.raises(ValueError, match="printable"):
        ServeSettings(api_key="k" * 20 + " x")
    assert KEY not in repr(ServeSettings(api_key=KEY)) and ServeSettings(api_key="  ").api_key is None


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer wrong-key-0123456789abcdef"},
        {"authorization": KEY},
        {"authorization": f"Basic {KEY}"},
        {"authorization": f"Bearer {KEY}x"},
        {"authorization": "Bearer"},
        {"x-api-key": KEY},
    ],
)
def test_a_missing_or_wrong_key_is_401(make_client, headers):
    client = make_client(api_key=KEY)
    for method, path in [
        ("POST", "/invoke"),
        ("POST", "/batch"),
        ("POST", "/stream"),
        ("POST", "/feedback"),
        ("GET", "/schema"),
        ("GET", "/graph"),
        ("GET", "/runs"),
        ("GET", "/runs/x"),
        ("GET", "/docs"),
        ("GET", "/openapi.json"),
        ("GET", "/no/such/route"),
    ]:
        response = client.request(
            method, path, json={"input": SEAT_INPUT} if method == "POST" else None, headers=headers
        )
        error = assert_error(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"
        assert KEY not in response.text and "Bearer <key>" in error["message"]
    assert client.app.state.store.count() == 0


def test_the_right_key_is_200_and_health_is_open(make_client):
    client = make_client(api_key=KEY)
    assert client.get("/health").status_code == 200  # a load balancer's probe needs no key
    ok = client.post("/invoke", json={"input": {**SEAT_INPUT, "preferences": f"window {KEY}"}}, headers=AUTH)
    assert ok.status_code == 200, ok.text
    lower = client.post("/invoke", json={"input": SEAT_INPUT}, headers={"authorization": f"bearer {KEY}"})
    assert lower.status_code == 200
    assert client.get("/docs", headers=AUTH).status_code == 200
    stored = client.get(f"/runs/{ok.json()['run_id']}", headers=AUTH).json()
    assert stored["inputs"]["preferences"] == "window [redacted]" and KEY not in json.dumps(stored)


def test_without_a_key_everything_is_open(make_client):
    client = make_client()
    assert client.get("/docs").status_code == 200 and client.get("/openapi.json").status_code == 200
    assert client.post("/invoke", json={"input": SEAT_INPUT}).status_code == 200


def test_bearer_parsing():
    assert bearer_token(f"Bearer {KEY}") == KEY and bearer_token(f"  BEARER   {KEY} ") == KEY
    assert bearer_token("Basic abc") is None and bearer_token("Bearer ") is None and bearer_token(None) is None


# --- Host names -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:8000",
        "127.0.0.1.evil.example",
        "localhost.evil",
        "",
        "10.0.0.5:8000",
        "[::2]:8000",
    ],
)
def test_a_foreign_host_is_400(make_client, host):
    client = make_client(api_key=KEY)
    for method, path in [("POST", "/invoke"), ("GET", "/health"), ("GET", "/runs")]:
        response = client.request(
            method, path, json={"input": SEAT_INPUT} if method == "POST" else None, headers={**AUTH, "host": host}
        )
        assert "not served here" in assert_error(response, 400, "bad_request")["message"]
    assert client.app.state.store.count() == 0


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.1:8000", "localhost:8000", "LOCALHOST", "[::1]:8000", "localhost."]
)
def test_loopback_names_are_served_on_a_loopback_bind(make_client, host):
    response = make_client().post("/invoke", json={"input": SEAT_INPUT}, headers={"host": host})
    assert response.status_code == 200, response.text


def test_allowed_hosts_and_wildcard_binds(make_client):
    client = make_client(host="0.0.0.0", api_key=KEY, allowed_hosts=("agent.internal",))
    for host in ("agent.internal", "agent.internal:8000", "localhost:8000"):
        assert client.get("/schema", headers={**AUTH, "host": host}).status_code == 200
    assert_error(client.get("/schema", headers={**AUTH, "host": "0.0.0.0"}), 400)
    assert allowed_host_names("10.1.2.3") == {"10.1.2.3"}
    assert allowed_host_names("127.0.0.1", ["Agent.Example."]) == {"localhost", "127.0.0.1", "::1", "agent.example"}
    assert host_name("[::1]:80") == "::1" and host_name("Example.COM.:80") == "example.com"
    anyone = make_client(allowed_hosts=("*",))
    assert anyone.get("/schema", headers={"host": "whatever.example"}).status_code == 200


# --- JSON bodies only -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "application/jsonx", "text/json", None],
)
def test_a_body_not_sent_as_json_is_415(make_client, content_type):
    client = make_client()
    body = json.dumps({"input": SEAT_INPUT}).encode()
    headers = {"content-type": content_type} if content_type else {}
    for path in ("/invoke", "/batch", "/stream", "/feedback"):
        response = client.post(path, content=body, headers=headers)
        assert assert_error(response, 415, "unsupported_media_type")["message"].startswith("request body must be")
    assert client.app.state.store.count() == 0


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON", "application/json;"])
def test_json_with_parameters_is_accepted(make_client, content_type):
    body = json.dumps({"input": SEAT_INPUT}).encode()
    assert make_client().post("/invoke", content=body, headers={"content-type": content_type}).status_code == 200


# --- the deadline -----------------------------------------------------------------------------------------------
def _wait_idle(client: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while client.get("/health").json()["active"]:
        assert time.monotonic() < deadline, "the slot was never given back"
        time.sleep(0.05)


def test_a_hanging_model_answers_504_by_the_deadline_and_frees_its_slot(make_client):
    flow = seat_flow()
    client = make_client(model=InstantChatModel.for_flow(flow, hang_seconds=2.0), timeout=0.4, max_concurrency=1)
    with client:  # one event loop for every request, as under uvicorn (the worker outlives its request)
        started = time.monotonic()
        response = client.post("/invoke", json={"input": {**SEAT_INPUT, "preferences": HANG_MARKER}})
        error = assert_error(response, 504, "timeout")
        assert time.monotonic() - started < 1.5 and "0.4 s deadline" in error["message"]
        stored = client.get(f"/runs/{error['run_id']}").json()
        assert stored["error"].startswith("timeout") and stored["outputs"] is None
        # the worker still runs: its slot stays taken (no pile of hung threads), so the next run is a 503
        assert client.get("/health").json()["active"] == 1
        assert_error(client.post("/invoke", json={"input": SEAT_INPUT}), 503, "overloaded")
        _wait_idle(client)
        assert client.post("/invoke", json={"input": SEAT_INPUT}).status_code == 200
        late = client.get(f"/runs/{error['run_id']}").json()
        assert late["error"].startswith("timeout") and late["outputs"] is None
        assert [t["node"] for t in late["traces"]] == ["recommend", "summarize"]  # what it did, kept
        assert client.app.state.store.count() == 2  # the timed-out run once, the next one once


def test_a_batch_past_the_deadline_is_504_and_every_run_is_recorded_once(make_client):
    flow = seat_flow()
    client = make_client(model=InstantChatModel.for_flow(flow, hang_seconds=1.5), timeout=0.4)
    with client:
        hang = {**SEAT_INPUT, "preferences": HANG_MARKER}
        response = client.post("/batch", json={"inputs": [SEAT_INPUT, hang, {"preferences": "bad"}]})
        error = assert_error(response, 504, "timeout")
        assert "1 of 2 runs done" in error["message"] and len(error["run_ids"]) == 1
        _wait_idle(client)
        runs = client.get("/runs").json()["runs"]
        assert len(runs) == 2 and sorted(r["error"] is None for r in runs) == [False, True]
        assert next(r for r in runs if r["error"])["run_id"] == error["run_ids"][0]
        streamed = client.post("/stream", json={"input": hang})
        assert "event: error" in streamed.text and '"type":"timeout"' in streamed.text
        _wait_idle(client)
        assert client.app.state.store.count() == 3


# --- /runs pages and the store ----------------------------------------------------------------------------------
def test_runs_are_paginated_and_bounded(make_client):
    client = make_client()
    store = client.app.state.store
    big = "y" * 20_000
    for i in range(130):  # pairs share a creation time: the cursor breaks ties by id
        store.record(
            RunRecord(
                run_id=f"r{i:03d}",
                created=1000.0 + i // 2,
                flow="seats",
                inputs={"preferences": big},
                outputs={"top_seat": big},
                traces=[{"node": "recommend", "replies": [big]}],
            )
        )
    store.add_feedback("r129", 0.5, "fine")
    first = client.get("/runs", params={"limit": 1000})
    body = first.json()
    assert body["limit"] == 100 and len(body["runs"]) == 100 and body["next"]
    assert len(first.content) < 40_000  # summaries: no inputs, outputs or traces
    top = body["runs"][0]
    assert top["run_id"] == "r129" and "id" not in top and top["feedback_count"] == 1 and top["last_score"] == 0.5
    assert not {"inputs", "outputs", "traces"} & set(top) and top["input_bytes"] > 20_000
    seen: list[str] = []
    cursor = None
    while True:
        page = client.get("/runs", params={"limit": 40, **({"before": cursor} if cursor else {})}).json()
        seen += [r["run_id"] for r in page["runs"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [f"r{i:03d}" for i in reversed(range(130))]
    whole = client.get("/runs/r007").json()
    assert whole["run_id"] == "r007" and "id" not in whole and whole["inputs"]["preferences"] == big
    assert_error(client.get("/runs", params={"before": "yesterday"}), 422, "validation_error")


def test_the_input_is_stored_once(make_client, tmp_path):
    client = make_client()
    marker = "MARK-" + "z" * 5000
    run_id = client.post("/invoke", json={"input": {**SEAT_INPUT, "preferences": marker}}).json()["run_id"]
    path = client.app.state.store.path
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
    assert sum(str(column).count("MARK-") for column in row) == 1
    whole = client.get(f"/runs/{run_id}").json()
    assert whole["inputs"]["preferences"] == marker
    assert whole["traces"][0]["inputs"]["preferences"] == marker and "run_inputs" not in whole["traces"][0]
