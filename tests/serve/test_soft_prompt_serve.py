"""Serving an artifact whose node holds a soft prompt, on the tiny random `hf:` model: the server loads the artifact
(its tensor file checked beside it) and answers as the flow does in process; a reload with a changed file is
refused and the old flow keeps serving."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the [soft] extra (torch==2.13.0, transformers, peft) is not installed")
pytest.importorskip("peft", reason="the [soft] extra (peft) is not installed")
pytest.importorskip("fastapi", reason="the [serve] extra is not installed")

from fastapi.testclient import TestClient

from microprompts import Flow
from microprompts.models.client import ModelCaller
from microprompts.serve.app import create_app
from microprompts.serve.deploy import write_deployment
from tests.fakes.tiny_soft import QUESTIONS, soft_setup


def test_serve_runs_a_soft_prompt_artifact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROPROMPTS_THREADS", "1")
    setup = soft_setup(tmp_path)
    artifact = tmp_path / "deploy" / "flow.json"
    setup.flow.save(artifact)
    spec = f"hf:{setup.model.model_path}"
    expected = Flow.load(artifact).compile(model=setup.model, caller=ModelCaller(cache=None))
    app = create_app(str(artifact), model=spec, store=tmp_path / "runs.sqlite")
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for question in QUESTIONS[:2]:
            response = client.post("/invoke", json={"input": {"question": question}})
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["output"]["output"] == expected.invoke({"question": question})["output"]
            assert body["usage"]["calls"] == 1

        tensor = artifact.parent / setup.ref.file
        tensor.write_bytes(tensor.read_bytes()[:-1] + b"\x00")
        reload = client.post("/reload")  # a changed file never replaces the serving flow
        assert reload.status_code == 409 and f"soft prompt file {setup.ref.file} is refused" in reload.text
        again = client.post("/invoke", json={"input": {"question": QUESTIONS[0]}})
        assert again.status_code == 200, again.text


def test_deploy_ships_the_soft_prompt_files_beside_the_artifact(tmp_path: Path) -> None:
    setup = soft_setup(tmp_path)
    artifact = tmp_path / "saved" / "flow.json"
    setup.flow.save(artifact)
    out = tmp_path / "deployment"
    written = write_deployment(artifact, out, model=f"hf:{setup.model.model_path}")
    assert written[setup.ref.file] == out / setup.ref.file and (out / setup.ref.file).stat().st_mode & 0o777 == 0o644
    assert "microprompts[soft]" in (out / "requirements.txt").read_text(encoding="utf-8")
    deployed = Flow.load(out / "artifact.json")
    assert deployed.soft_dir == str(out.resolve()) and deployed.content_hash() == setup.flow.content_hash()
