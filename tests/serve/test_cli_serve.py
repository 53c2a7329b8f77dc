"""`microprompts serve` in process (uvicorn.run replaced, so nothing listens): where the run store lands when no
--store is given (beside the artifact; for a flow reference, ./.microprompts), never silently the working
directory; and the names every run endpoint gives a run's id (`run_id`, nowhere `id`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from microprompts.cli import main
from microprompts.serve.settings import default_store_path
from tests.serve.helpers import REPO, SEAT_INPUT, seat_flow

MODEL = "openai:fake@http://127.0.0.1:9/v1"  # resolved at start-up, never called here


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[FastAPI]:
    """The apps `serve` would have run; the working directory is an empty folder of its own."""
    apps: list[FastAPI] = []

    def fake_run(app: FastAPI, **kwargs: Any) -> None:
        apps.append(app)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return apps


def _store_path(app: FastAPI) -> Path:
    return app.state.store.path


def test_the_store_defaults_to_the_artifacts_directory(tmp_path, started, capsys):
    artifact = tmp_path / "models" / "seats.opt.json"
    artifact.parent.mkdir()
    seat_flow().save(str(artifact))
    assert main(["serve", str(artifact), "--model", MODEL, "--allow-module", "tests.serve.helpers"]) == 0
    assert _store_path(started[0]) == artifact.parent.resolve() / "runs.sqlite"
    assert list(Path.cwd().iterdir()) == []  # nothing in the working directory
    assert str(artifact.parent.resolve() / "runs.sqlite") in capsys.readouterr().err


def test_a_flow_reference_records_under_dot_microprompts(started):
    ref = f"{REPO}/examples/seats/flow.py:flow"
    assert main(["serve", ref, "--model", MODEL]) == 0
    assert _store_path(started[0]) == Path.cwd().resolve() / ".microprompts" / "runs.sqlite"
    assert [p.name for p in Path.cwd().iterdir()] == [".microprompts"]


def test_store_and_no_store_are_honoured(tmp_path, started):
    artifact = tmp_path / "seats.opt.json"
    seat_flow().save(str(artifact))
    allow = ["--allow-module", "tests.serve.helpers", "--model", MODEL]
    assert main(["serve", str(artifact), "--store", str(tmp_path / "elsewhere" / "r.sqlite"), *allow]) == 0
    assert _store_path(started[0]) == (tmp_path / "elsewhere" / "r.sqlite").resolve()
    assert main(["serve", str(artifact), "--no-store", *allow]) == 0
    assert started[1].state.store is None


def test_default_store_path():
    assert default_store_path("a/b/x.json") == Path("a/b").resolve() / "runs.sqlite"
    assert default_store_path("pkg.mod:flow") == Path.cwd().resolve() / ".microprompts" / "runs.sqlite"
    assert default_store_path("a/f.py:flow") == Path.cwd().resolve() / ".microprompts" / "runs.sqlite"


def test_every_endpoint_names_the_run_id_run_id(make_client):
    client = make_client()
    invoked = client.post("/invoke", json={"input": SEAT_INPUT}).json()
    batch = client.post("/batch", json={"inputs": [SEAT_INPUT]}).json()["results"][0]
    streamed = client.post("/stream", json={"input": SEAT_INPUT}).text
    events = [json.loads(line[6:]) for line in streamed.splitlines() if line.startswith("data: ")]
    ends = [events[0], events[-1]]  # start and end (the updates between are node updates)
    feedback = client.post("/feedback", json={"run_id": invoked["run_id"], "score": 1}).json()["feedback"]
    page = client.get("/runs").json()["runs"]
    one = client.get(f"/runs/{invoked['run_id']}").json()
    for body in [invoked, batch, *ends, feedback, *page, one]:
        assert "run_id" in body and "id" not in body, body
    assert {r["run_id"] for r in page} == {invoked["run_id"], batch["run_id"], ends[-1]["run_id"]}
    assert one["run_id"] == invoked["run_id"] and one["feedback"][0]["run_id"] == invoked["run_id"]
