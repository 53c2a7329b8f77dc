"""Acceptance: `microprompts serve` as a real subprocess on a free local port, with a saved artifact whose model
is the fake OpenAI server; every endpoint over real HTTP, the failure answers, then the run store read back."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from microprompts.serve import RunStore
from tests.serve.helpers import SEAT_INPUT, SLOW_MARKER, schema_responder, seat_flow, served

SENTINEL = "sk-test-SENTINEL-5f1c0ffee0ddba11"
SEAT_KEYS = {"recommended_seats", "top_seat", "n_seats"}


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "Traceback" not in response.text
    return response.json()["error"]


def _events(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    events, name = [], ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[6:])))
    return events


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "seats.opt.json"
    seat_flow().save(str(path))
    return path


def test_serve_subprocess_end_to_end(tmp_path, artifact, fake_openai, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
    fake = fake_openai(schema_responder(slow_seconds=3.0))
    store_path = tmp_path / "runs.sqlite"
    log_path = tmp_path / "serve.log"
    args = [
        str(artifact),
        "--model",
        f"openai:fake@{fake.base_url}",
        "--store",
        str(store_path),
        "--max-concurrency",
        "1",
        "--max-body-bytes",
        "20000",
        "--allow-module",
        "tests.serve.helpers",
    ]
    run_ids: list[str] = []
    with (
        served(args, log_path, env={"OPENAI_API_KEY": SENTINEL}) as base,
        httpx.Client(base_url=base, timeout=30) as http,
    ):
        health = http.get("/health").json()
        assert health["status"] == "ok" and health["max_concurrency"] == 1 and health["store"] is True
        schema = http.get("/schema").json()
        assert schema["input"]["required"] == ["preferences", "available_seats"]
        assert "recommend" in http.get("/graph").text
        assert http.get("/docs").status_code == 200
        assert "/invoke" in http.get("/openapi.json").json()["paths"]

        # invoke, with the secret pasted into an input: answered, but never stored
        ok = http.post("/invoke", json={"input": {**SEAT_INPUT, "preferences": f"window {SENTINEL}"}})
        assert ok.status_code == 200, ok.text
        assert set(ok.json()["output"]) == SEAT_KEYS and ok.json()["usage"]["calls"] == 1
        run_ids.append(ok.json()["run_id"])

        with http.stream("POST", "/stream", json={"input": SEAT_INPUT}) as streamed:
            assert streamed.status_code == 200
            events = _events(streamed)
        assert [e[0] for e in events] == ["start", "update", "update", "end"]
        run_ids.append(events[-1][1]["run_id"])

        batch = http.post("/batch", json={"inputs": [SEAT_INPUT, {"preferences": "aisle"}]}).json()
        assert batch["errors"] == 1 and set(batch["results"][0]["output"]) == SEAT_KEYS
        run_ids.append(batch["results"][0]["run_id"])

        assert http.post("/feedback", json={"run_id": run_ids[0], "score": 0.5, "comment": "ok"}).status_code == 200
        assert _error(http.post("/feedback", json={"run_id": run_ids[0], "score": "great"}), 422)
        assert _error(http.post("/feedback", json={"run_id": "no-such-run", "score": 1}), 404)["type"] == "unknown_run"
        assert http.get(f"/runs/{run_ids[1]}").json()["endpoint"] == "stream"

        # malformed, oversized, unknown
        assert (
            _error(http.post("/invoke", content=b'{"input": ', headers={"content-type": "application/json"}), 422)[
                "type"
            ]
            == "invalid_json"
        )
        assert _error(http.post("/invoke", json={"input": {"preferences": "x"}}), 422)["type"] == "validation_error"
        oversized = http.post("/invoke", json={"input": SEAT_INPUT, "junk": "z" * 30_000})
        assert _error(oversized, 413)["type"] == "payload_too_large"
        chunked = http.post("/invoke", content=(b"z" * 5000 for _ in range(10)))  # no Content-Length
        assert _error(chunked, 413)["type"] == "payload_too_large"
        assert _error(http.get("/no/such/route"), 404)["type"] == "not_found"
        assert _error(http.delete("/invoke"), 405)["type"] == "method_not_allowed"

        # saturation: one slow run holds the only slot; the next answers 503 at once
        slow_result: dict[str, Any] = {}

        def slow() -> None:
            response = http.post("/invoke", json={"input": {**SEAT_INPUT, "preferences": SLOW_MARKER}})
            slow_result["status"], slow_result["body"] = response.status_code, response.json()

        holder = threading.Thread(target=slow)
        holder.start()
        deadline = time.monotonic() + 10
        while http.get("/health").json()["active"] < 1:
            assert time.monotonic() < deadline, "the slow run never took the slot"
            time.sleep(0.02)
        started = time.monotonic()
        busy = http.post("/invoke", json={"input": SEAT_INPUT})
        assert _error(busy, 503)["type"] == "overloaded" and busy.headers["retry-after"] == "1"
        assert _error(http.post("/stream", json={"input": SEAT_INPUT}), 503)
        assert _error(http.post("/batch", json={"inputs": [SEAT_INPUT]}), 503)
        assert time.monotonic() - started < 2.0  # answered without waiting for the slot
        holder.join(timeout=30)
        assert slow_result["status"] == 200
        run_ids.append(slow_result["body"]["run_id"])
        assert http.post("/invoke", json={"input": SEAT_INPUT}).status_code == 200  # the slot is free again

    # the run store, read back after the server stopped
    store = RunStore(store_path)
    assert store.count() == 5  # invoke, stream, batch item, slow, last invoke (503s and 4xx never ran)
    first = store.get(run_ids[0])
    assert first is not None and first["feedback"][0]["score"] == 0.5 and first["feedback"][0]["comment"] == "ok"
    assert "[redacted]" in first["inputs"]["preferences"] and SENTINEL not in json.dumps(first)
    assert [t["node"] for t in first["traces"]] == ["recommend", "summarize"]
    assert first["artifact_hash"] == seat_flow().content_hash() and first["latency"] > 0
    assert first["prompt_tokens"] > 0 and first["completion_tokens"] > 0
    assert {store.get(r)["endpoint"] for r in run_ids} == {"invoke", "stream", "batch"}
    store.close()

    # no secret in anything the server wrote
    written = [p for p in tmp_path.iterdir() if p.name.startswith("runs.sqlite")] + [log_path]
    for path in written:
        assert SENTINEL.encode() not in path.read_bytes(), path
    assert "Uvicorn running on http://127.0.0.1:" in log_path.read_text()
