"""`POST /reload`: the served artifact file is read again and swapped in; a broken artifact keeps the old one
serving; every try is recorded in the store; the endpoint sits behind the same API key."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import BaseModel

from microprompts import Flow, MicroPrompt
from microprompts.serve import RunStore
from microprompts.serve.app import create_app
from microprompts.serve.settings import ServeSettings
from tests.serve.helpers import InstantChatModel


class Answer(BaseModel):
    answer: str


class Other(BaseModel):
    verdict: str


def _flow(task: str, output: type[BaseModel] = Answer, name: str = "answer") -> Flow:
    return Flow("qa").then(MicroPrompt(name, task=task, inputs={"question": "a question"}, output=output))


def _client(tmp_path: Path, api_key: str | None = None) -> tuple[TestClient, Path, Path]:
    artifact, store = tmp_path / "qa.json", tmp_path / "runs.sqlite"
    _flow("Answer briefly.").save(str(artifact))
    model = InstantChatModel(reply='{"answer": "42"}')
    app = create_app(str(artifact), model=model, store=store, settings=ServeSettings(api_key=api_key))
    return TestClient(app, raise_server_exceptions=False, base_url="http://127.0.0.1"), artifact, store


def _invoke(client: TestClient, **headers: str) -> dict:
    answer = client.post("/invoke", json={"input": {"question": "why?"}}, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_new_artifact_is_swapped_in_and_recorded(tmp_path: Path) -> None:
    client, artifact, store = _client(tmp_path)
    with client:
        first = client.get("/health").json()["artifact_hash"]
        _invoke(client)
        new_hash = _flow("Answer in one word.").save(str(artifact))
        answer = client.post("/reload")
        assert answer.status_code == 200, answer.text
        assert answer.json()["ok"] and answer.json()["previous"] == first
        assert client.get("/health").json()["artifact_hash"] == answer.json()["artifact_hash"] == new_hash != first
        assert client.get("/schema").json()["artifact_hash"] == new_hash
        run_id = _invoke(client)["run_id"]
        assert client.get(f"/runs/{run_id}").json()["artifact_hash"] == new_hash
    events = RunStore(store).events("reload")
    assert [e["detail"]["ok"] for e in events] == [True]


def test_a_broken_artifact_keeps_the_old_one_serving(tmp_path: Path) -> None:
    client, artifact, store = _client(tmp_path)
    with client:
        before = client.get("/health").json()["artifact_hash"]
        artifact.write_text("{ not json")
        answer = client.post("/reload")
        assert answer.status_code == 409 and "kept the serving artifact" in answer.json()["error"]["message"]
        _flow("Other.", output=Other).save(str(artifact))  # changes the outputs
        answer = client.post("/reload")
        assert answer.status_code == 409 and "inputs or outputs" in answer.json()["error"]["message"]
        assert client.get("/health").json()["artifact_hash"] == before
        assert _invoke(client)["output"] == {"answer": "42"}
    details = [e["detail"] for e in RunStore(store).events("reload")]
    assert [d["ok"] for d in details] == [False, False] and all(d["artifact_hash"] == before for d in details)
    assert "JSON" in details[0]["error"] or "artifact" in details[0]["error"].lower()


def test_reload_needs_the_api_key_and_an_artifact_file(tmp_path: Path) -> None:
    client, _, _ = _client(tmp_path, api_key="k" * 20)
    with client:
        assert client.post("/reload").status_code == 401
        assert client.post("/reload", headers={"Authorization": "Bearer " + "k" * 20}).status_code == 200
    flow = _flow("Answer.")
    app = create_app(flow, model=InstantChatModel(reply='{"answer": "1"}'))
    with TestClient(app, raise_server_exceptions=False, base_url="http://127.0.0.1") as plain:
        answer = plain.post("/reload")
        assert answer.status_code == 409 and "not started from an artifact file" in json.dumps(answer.json())
