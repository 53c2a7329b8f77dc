"""The agent app in process (FastAPI's TestClient, an instant fake model): every endpoint and error shape."""

from __future__ import annotations

import json
from typing import Any, TypedDict

import pytest
from pydantic import BaseModel

from microprompts import Flow, FunctionNode, MicroPrompt
from tests.serve.helpers import SEAT_INPUT, InstantChatModel, seat_flow

SEAT_KEYS = {"recommended_seats", "top_seat", "n_seats"}


def assert_error(response: Any, status: int, type_: str | None = None) -> dict[str, Any]:
    """The response is a JSON error body of this status (and type), with no traceback."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "Traceback" not in response.text
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    if type_ is not None:
        assert error["type"] == type_, error
    return error


def test_invoke_returns_run_id_output_and_usage(make_client):
    client = make_client()
    response = client.post("/invoke", json={"input": SEAT_INPUT})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"run_id", "output", "usage", "latency"}
    assert set(body["output"]) == SEAT_KEYS
    assert body["output"]["top_seat"] == body["output"]["recommended_seats"][0]
    assert body["usage"]["calls"] == 1 and body["usage"]["prompt_tokens"] == 10


@pytest.mark.parametrize(
    "body",
    [
        {"input": {"preferences": "window"}},  # missing key
        {"input": {**SEAT_INPUT, "extra": 1}},  # unknown key
        {"input": "not an object"},
        {"inputs": SEAT_INPUT},  # wrong envelope
        {"input": SEAT_INPUT, "config": {}},
        [SEAT_INPUT],
        None,
    ],
)
def test_invoke_rejects_invalid_bodies_with_422(make_client, body):
    error = assert_error(make_client().post("/invoke", json=body), 422)
    assert error["type"] in {"validation_error", "invalid_json"}


@pytest.mark.parametrize(
    "raw", [b"", b"{bad", b"NaN", b'{"input": Infinity}', b"\xff\xfe\x00", b'"\\ud800"', b"[" * 100_000, b"1" * 5000]
)
def test_malformed_json_is_422(make_client, raw):
    assert_error(make_client().post("/invoke", content=raw, headers={"content-type": "application/json"}), 422)


def test_unknown_route_and_wrong_method_are_json(make_client):
    client = make_client()
    assert_error(client.get("/nope"), 404, "not_found")
    assert_error(client.post("/runs/x/y"), 404, "not_found")
    error = assert_error(client.get("/invoke"), 405, "method_not_allowed")
    assert "GET" in error["message"]
    assert client.get("/invoke").headers["allow"] == "POST"


def test_body_limit_on_declared_and_actual_size(make_client):
    client = make_client(max_body_bytes=1000)
    assert_error(client.post("/invoke", content=b"x" * 5000), 413, "payload_too_large")

    def chunks():  # no Content-Length: the actual bytes are counted
        for _ in range(10):
            yield b"y" * 300

    assert_error(client.post("/invoke", content=chunks()), 413, "payload_too_large")
    assert client.post("/invoke", json={"input": SEAT_INPUT}).status_code == 200


def test_saturated_server_answers_503(make_client):
    client = make_client(max_concurrency=2)
    slots = client.app.state.slots
    slots.active = slots.size  # every slot busy
    for path, body in [
        ("/invoke", {"input": SEAT_INPUT}),
        ("/stream", {"input": SEAT_INPUT}),
        ("/batch", {"inputs": [SEAT_INPUT]}),
    ]:
        response = client.post(path, json=body)
        assert_error(response, 503, "overloaded")
        assert response.headers["retry-after"] == "1"
    assert client.get("/health").json()["active"] == 2  # cheap endpoints still answer
    slots.active = 0
    assert client.post("/invoke", json={"input": SEAT_INPUT}).status_code == 200
    assert slots.active == 0


def _events(client: Any, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    events, name = [], None
    with client.stream("POST", "/stream", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[len("data: ") :])))
    return events


def test_stream_sends_node_updates_then_the_final_output(make_client):
    client = make_client()
    events = _events(client, {"input": SEAT_INPUT})
    assert [e[0] for e in events] == ["start", "update", "update", "end"]
    run_id = events[0][1]["run_id"]
    assert [e[1]["node"] for e in events[1:3]] == ["recommend", "summarize"]
    assert set(events[1][1]["update"]) == {"recommended_seats"}
    end = events[-1][1]
    assert end["run_id"] == run_id and set(end["output"]) == SEAT_KEYS
    stored = client.get(f"/runs/{run_id}").json()
    assert stored["endpoint"] == "stream" and stored["outputs"] == end["output"]
    assert client.app.state.slots.active == 0


def test_stream_ends_with_an_error_event_when_the_run_fails(make_client):
    client = make_client(model=InstantChatModel(reply="no json here"))
    events = _events(client, {"input": SEAT_INPUT})
    assert events[0][0] == "start" and events[-1][0] == "error"
    assert events[-1][1]["error"]["type"] == "output_parse_error"


def test_stream_rejects_bad_input_before_streaming(make_client):
    assert_error(make_client().post("/stream", json={"input": {}}), 422, "validation_error")


def test_batch_gives_per_item_results_and_errors(make_client):
    client = make_client()
    response = client.post("/batch", json={"inputs": [SEAT_INPUT, {"preferences": "aisle"}, SEAT_INPUT]})
    assert response.status_code == 200
    body = response.json()
    assert body["errors"] == 1
    first, bad, third = body["results"]
    assert first["index"] == 0 and set(first["output"]) == SEAT_KEYS
    assert bad["index"] == 1 and bad["error"]["type"] == "validation_error"
    assert bad["error"]["details"][0]["loc"] == ["inputs", "1", "available_seats"]
    assert third["run_id"] != first["run_id"]
    assert client.post("/batch", json={"inputs": []}).json() == {"results": [], "errors": 0}


def test_batch_limits(make_client):
    client = make_client(max_batch=3)
    assert_error(client.post("/batch", json={"inputs": [SEAT_INPUT] * 4}), 422, "validation_error")
    assert_error(client.post("/batch", json={"inputs": SEAT_INPUT}), 422, "validation_error")


def test_schema_graph_health_and_docs(make_client):
    client = make_client()
    schema = client.get("/schema").json()
    assert schema["name"] == "seats" and schema["artifact_hash"].startswith("sha256:")
    assert schema["input"]["required"] == ["preferences", "available_seats"]
    assert schema["input"]["additionalProperties"] is False
    assert set(schema["output"]["properties"]) == SEAT_KEYS
    assert schema["output"]["properties"]["recommended_seats"]["items"] == {"type": "string"}
    mermaid = client.get("/graph")
    assert mermaid.headers["content-type"].startswith("text/plain")
    assert "recommend" in mermaid.text and "summarize" in mermaid.text and "graph TD" in mermaid.text
    assert client.get("/health").json() == {
        "status": "ok",
        "load_seconds": 0.0,
        "flow": "seats",
        "artifact_hash": schema["artifact_hash"],
        "active": 0,
        "max_concurrency": 8,
        "store": True,
    }
    openapi = client.get("/openapi.json").json()
    paths = {"/invoke", "/stream", "/batch", "/schema", "/graph", "/health", "/ready", "/feedback", "/runs/{run_id}"}
    assert paths <= set(openapi["paths"])
    body_schema = openapi["paths"]["/invoke"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema["properties"]["input"]["required"] == ["preferences", "available_seats"]
    assert client.get("/docs").status_code == 200


def test_feedback_and_run_lookup(make_client):
    client = make_client()
    run_id = client.post("/invoke", json={"input": SEAT_INPUT}).json()["run_id"]
    ok = client.post("/feedback", json={"run_id": run_id, "score": 0.25, "comment": "wrong row"})
    assert ok.status_code == 200 and ok.json()["feedback"]["score"] == 0.25
    assert client.post("/feedback", json={"run_id": run_id, "score": 1}).status_code == 200
    run = client.get(f"/runs/{run_id}").json()
    assert run["inputs"] == SEAT_INPUT and set(run["outputs"]) == SEAT_KEYS
    assert [t["node"] for t in run["traces"]] == ["recommend", "summarize"]
    assert run["prompt_tokens"] == 10 and run["completion_tokens"] == 5 and run["calls"] == 1
    assert run["artifact_hash"] == seat_flow().content_hash() and run["error"] is None
    assert [(f["score"], f["comment"]) for f in run["feedback"]] == [(0.25, "wrong row"), (1.0, None)]
    assert client.get("/runs", params={"feedback_only": True}).json()["runs"][0]["run_id"] == run_id
    assert_error(client.get("/runs/nope"), 404, "unknown_run")
    assert_error(client.post("/feedback", json={"run_id": "nope", "score": 1.0}), 404, "unknown_run")


@pytest.mark.parametrize("score", ["high", None, True, [1], {"v": 1}])
def test_feedback_rejects_bad_scores(make_client, score):
    client = make_client()
    run_id = client.post("/invoke", json={"input": SEAT_INPUT}).json()["run_id"]
    assert_error(client.post("/feedback", json={"run_id": run_id, "score": score}), 422, "validation_error")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"run_id": "x", "score": NaN}',
        b'{"run_id": "x", "score": 1e999}',
        b'{"run_id": "x", "score": 1, "extra": 2}',
        b'{"score": 1}',
    ],
)
def test_feedback_rejects_non_finite_and_malformed(make_client, raw):
    assert_error(make_client().post("/feedback", content=raw, headers={"content-type": "application/json"}), 422)


def test_without_a_store_feedback_and_runs_are_404(make_client):
    client = make_client(store=False)
    run_id = client.post("/invoke", json={"input": SEAT_INPUT}).json()["run_id"]
    assert_error(client.post("/feedback", json={"run_id": run_id, "score": 1.0}), 404, "no_store")
    assert_error(client.get(f"/runs/{run_id}"), 404, "no_store")
    assert client.get("/health").json()["store"] is False


class Boom(Exception):
    pass


def explode(state: dict[str, Any]) -> dict[str, Any]:
    raise Boom("kaboom /very/secret/path")


def test_failing_runs_answer_json_and_are_recorded(make_client):
    garbled = make_client(model=InstantChatModel(reply="not json"))
    error = assert_error(garbled.post("/invoke", json={"input": SEAT_INPUT}), 502, "output_parse_error")
    run = garbled.get(f"/runs/{error['run_id']}").json()
    assert run["error"].startswith("output_parse_error") and run["outputs"] is None
    assert run["traces"][0]["error"] and len(run["traces"][0]["replies"]) == 2  # the reply and its repair

    flow = seat_flow().replace_node(
        FunctionNode("summarize", explode, reads=["recommended_seats"], writes=["top_seat", "n_seats"])
    )
    broken = make_client(flow=flow, model=InstantChatModel.for_flow(flow))
    error = assert_error(broken.post("/invoke", json={"input": SEAT_INPUT}), 500, "internal_error")
    assert "Boom: kaboom" in error["message"]
    assert broken.get(f"/runs/{error['run_id']}").json()["error"].startswith("internal_error")


def test_model_call_failures_are_502(make_client, fake_openai):
    from tests.fakes import FaultSchedule

    server = fake_openai(faults=FaultSchedule(rate=1.0, kinds=["500"]))
    from microprompts.models import ModelCaller

    client = make_client(
        model=f"openai:fake@{server.base_url}", caller=ModelCaller(cache=None, max_attempts=2, base_delay=0.01)
    )
    error = assert_error(client.post("/invoke", json={"input": SEAT_INPUT}), 502, "model_error")
    assert "after 2 attempts" in error["message"]
    assert server.calls == 2


class Typed(TypedDict, total=False):
    count: int
    names: list[str]
    answer: str


class Answer(BaseModel):
    answer: str


def test_typed_state_types_the_input_schema(make_client):
    node = MicroPrompt("answer", task="Answer.", inputs={"count": "n", "names": "who"}, output=Answer)
    flow = Flow("typed", state=Typed).then(node)
    client = make_client(flow=flow, model=InstantChatModel(reply='{"answer": "ok"}'))
    schema = client.get("/schema").json()["input"]
    assert schema["properties"]["count"]["type"] == "integer"
    assert schema["properties"]["names"] == {"items": {"type": "string"}, "title": "Names", "type": "array"}
    assert_error(client.post("/invoke", json={"input": {"count": "many", "names": []}}), 422, "validation_error")
    ok = client.post("/invoke", json={"input": {"count": 2, "names": ["a"]}})
    assert ok.status_code == 200 and ok.json()["output"] == {"answer": "ok"}


def test_odd_input_keys_are_served(make_client):
    node = MicroPrompt("echo", task="Echo.", inputs={"_private": "x", "with space": "y"}, output=Answer)
    flow = Flow("odd keys").then(node)
    client = make_client(flow=flow, model=InstantChatModel(reply='{"answer": "ok"}'))
    assert client.get("/schema").json()["input"]["required"] == ["_private", "with space"]
    assert client.post("/invoke", json={"input": {"_private": "1", "with space": "y"}}).status_code == 200


def test_artifact_hash_is_the_files_own(tmp_path, make_client):
    from microprompts.serve.app import create_app

    path = tmp_path / "only_prompt.json"
    flow = Flow("seats").then(seat_flow().nodes["recommend"])  # output class in tests.serve.helpers
    recorded = flow.save(str(path))
    app = create_app(path, model=InstantChatModel.for_flow(flow))  # default allow-list: the class is rebuilt
    assert app.state.agent.flow.content_hash() == recorded  # rebuilt from its schema, it keeps its ref and hash
    assert app.state.agent.artifact_hash == recorded


def test_unexpected_errors_are_a_500_json_body_without_traceback(make_client):
    client = make_client()

    def broken(run_id: str) -> None:
        raise RuntimeError("database on fire\nTraceback (most recent call last): nope")

    client.app.state.store.get = broken
    error = assert_error(client.get("/runs/some-id"), 500, "internal_error")
    assert error["message"] == "internal server error"


def test_query_validation_errors_are_json(make_client):
    client = make_client()
    assert_error(client.get("/runs", params={"limit": 0}), 422, "validation_error")
    assert_error(client.get("/runs", params={"limit": "many"}), 422, "validation_error")
    assert client.get("/runs", params={"limit": 5}).json() == {"runs": [], "limit": 5, "next": None}
