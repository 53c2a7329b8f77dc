"""Property-based tests on HTTP bodies: whatever a client sends, the agent answers 200 or a 4xx JSON error,
never a 5xx and never a traceback (in process, with an instant fake model, 500 examples each)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microprompts.serve.app import create_app
from microprompts.serve.settings import ServeSettings
from tests.serve.helpers import SEAT_INPUT, InstantChatModel, seat_flow

PROPERTY = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
POSTS = ["/invoke", "/stream", "/batch", "/feedback"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
# inputs close to valid: the right keys (sometimes one missing or one extra) with any JSON values
near_inputs = st.fixed_dictionaries(
    {}, optional={"preferences": json_values, "available_seats": json_values, "extra": json_values}
) | st.builds(lambda p, s: {"preferences": p, "available_seats": s}, json_values, json_values)
bodies = st.one_of(
    json_values,
    st.builds(lambda i: {"input": i}, near_inputs),
    st.builds(lambda items: {"inputs": items}, st.lists(near_inputs | json_values, max_size=4)),
    st.fixed_dictionaries(
        {},
        optional={
            "run_id": st.text(max_size=40) | json_values,
            "score": json_values,
            "comment": json_values,
            "other": json_values,
        },
    ),
    st.dictionaries(st.sampled_from(["input", "inputs", "config", "run_id", "score"]), json_values, max_size=3),
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    flow = seat_flow()
    store = Path(tmp_path_factory.mktemp("props")) / "runs.sqlite"
    app = create_app(
        flow,
        model=InstantChatModel.for_flow(flow),
        store=store,
        settings=ServeSettings(max_body_bytes=20_000, max_batch=8),
    )
    with TestClient(app, raise_server_exceptions=True, base_url="http://localhost") as test_client:
        yield test_client


def check(response: Any) -> None:
    """200 (JSON, or events for /stream) or a 4xx JSON error body; never 5xx, never a traceback."""
    assert response.status_code < 500, response.text[:500]
    assert "Traceback" not in response.text
    if response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream"):
        assert "event: start" in response.text
        return
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = json.loads(response.content)
    if response.status_code >= 400:
        assert isinstance(body["error"]["type"], str) and isinstance(body["error"]["message"], str)
        assert response.status_code in {400, 404, 405, 413, 415, 422}, response.text[:300]


@PROPERTY
@given(path=st.sampled_from(POSTS), body=bodies)
def test_any_json_body_gets_200_or_a_4xx_json_error(client, path, body):
    check(client.post(path, content=json.dumps(body), headers={"content-type": "application/json"}))


@PROPERTY
@given(
    path=st.sampled_from(POSTS),
    raw=st.binary(max_size=300) | bodies.map(lambda b: json.dumps(b).encode()),
    content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", ""]),
)
def test_any_bytes_get_200_or_a_4xx_json_error(client, path, raw, content_type):
    headers = {"content-type": content_type} if content_type else {}
    check(client.post(path, content=raw, headers=headers))


@PROPERTY
@given(input_=st.builds(lambda p, s: {"preferences": p, "available_seats": s}, json_values, json_values))
def test_any_valid_shaped_input_runs(client, input_):
    body = json.dumps({"input": input_})
    response = client.post("/invoke", content=body, headers={"content-type": "application/json"})
    check(response)
    if response.status_code == 200:
        assert set(response.json()["output"]) == {"recommended_seats", "top_seat", "n_seats"}


segments = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="?#/%\\"), min_size=1, max_size=12
)


@PROPERTY
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
    parts=st.lists(segments, min_size=1, max_size=3),
    body=st.binary(max_size=50),
)
def test_any_route_and_method_gets_a_json_answer(client, method, parts, body):
    path = "/" + "/".join(parts)
    response = client.request(method, path, content=body if method not in ("GET", "HEAD") else None)
    assert response.status_code < 500 and "Traceback" not in response.text
    if method != "HEAD" and response.status_code >= 400:
        assert "error" in response.json()


def test_oversized_bodies_are_413(client):
    response = client.post(
        "/invoke",
        content=json.dumps({"input": {**SEAT_INPUT, "preferences": "x" * 30_000}}),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413 and response.json()["error"]["type"] == "payload_too_large"
