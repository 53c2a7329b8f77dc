"""`microprompts deploy`: langgraph.json and agent.py, tested offline (the module imports and its graph
invokes with a fake model); LangGraph's own server is exercised only when its optional extra is installed."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from microprompts import Flow
from microprompts.flows import ArtifactError
from microprompts.flows.refs import load_flow_ref
from microprompts.nodes import RefError
from microprompts.serve.deploy import MODEL_ENV, graph_id, write_deployment
from tests.serve.helpers import REPO, SEAT_INPUT, schema_responder, seat_flow

SENTINEL = "sk-test-SENTINEL-deploy-8badf00d"
ALLOW = ["microprompts", "examples", "tests.serve.helpers"]


def _import(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "seats.opt.json"
    seat_flow().save(str(path))
    return path


def test_deploy_writes_a_langgraph_project_that_invokes(tmp_path, artifact, fake_openai, monkeypatch):
    fake = fake_openai(schema_responder())
    out = tmp_path / "deploy"
    written = write_deployment(artifact, out, model=f"openai:fake@{fake.base_url}", allow_modules=ALLOW)
    assert set(written) == {"artifact.json", "agent.py", "langgraph.json", "requirements.txt"}
    assert (out / "artifact.json").read_text() == artifact.read_text()
    config = json.loads((out / "langgraph.json").read_text())
    assert config == {"dependencies": ["."], "graphs": {"seats": "./agent.py:graph"}}

    moved = tmp_path / "elsewhere"  # the directory is self-contained: it still works after a move
    shutil.copytree(out, moved)
    module = _import(moved / "agent.py", "deployed_seats_agent")
    assert type(module.graph).__name__ == "CompiledStateGraph"
    state = module.graph.invoke(SEAT_INPUT)
    assert state["recommended_seats"] == ["economy_14A_window"] and state["top_seat"] == "economy_14A_window"
    assert fake.calls == 1


def test_model_env_overrides_the_baked_model(tmp_path, artifact, fake_openai, monkeypatch):
    fake = fake_openai(schema_responder())
    write_deployment(artifact, tmp_path / "d", model="openai:unreachable@http://127.0.0.1:9/v1", allow_modules=ALLOW)
    monkeypatch.setenv(MODEL_ENV, f"openai:fake@{fake.base_url}")
    module = _import(tmp_path / "d" / "agent.py", "deployed_env_agent")
    assert module.graph.invoke(SEAT_INPUT)["n_seats"] == 1


def test_deploy_refuses_disallowed_or_missing_artifacts(tmp_path, artifact):
    with pytest.raises(ArtifactError, match="not in the allowed modules"):
        write_deployment(artifact, tmp_path / "d")  # its function node's module is not allowed by default
    with pytest.raises(ArtifactError, match="cannot read"):
        write_deployment(tmp_path / "missing.json", tmp_path / "d")
    with pytest.raises(RefError, match="cannot import"):
        write_deployment("no_such_package.flows:flow", tmp_path / "d")
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("ref", [f"{REPO}/examples/seats/flow.py:flow", "tests.serve.helpers:seat_flow"])
def test_deploy_takes_a_flow_reference_as_serve_does(tmp_path, ref, fake_openai):
    fake = fake_openai(schema_responder())
    out = tmp_path / "deploy"
    write_deployment(ref, out, model=f"openai:fake@{fake.base_url}", allow_modules=ALLOW)
    deployed = Flow.load(str(out / "artifact.json"), allow=ALLOW)
    assert deployed.content_hash() == load_flow_ref(ref).content_hash()
    module = _import(out / "agent.py", f"deployed_ref_{abs(hash(ref))}")
    assert "recommended_seats" in module.graph.invoke(SEAT_INPUT)
    schema = module.graph.get_input_jsonschema()  # what LangGraph's server shows (works on Python 3.11 too)
    assert {"preferences", "available_seats"} <= set(schema["properties"])


def test_deploy_refuses_a_flow_whose_function_nodes_the_agent_could_not_import(tmp_path):
    with pytest.raises(ArtifactError, match="not in the allowed modules"):
        write_deployment("tests.serve.helpers:seat_flow", tmp_path / "d")  # tests.serve.helpers is not allowed
    assert not (tmp_path / "d").exists()


def test_deployment_files_are_world_readable_whatever_the_umask(tmp_path, artifact):
    old = os.umask(0o077)
    try:
        write_deployment(artifact, tmp_path / "new" / "deploy", allow_modules=ALLOW)
    finally:
        os.umask(old)
    out = tmp_path / "new" / "deploy"
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()}
    assert modes == dict.fromkeys(["artifact.json", "agent.py", "langgraph.json", "requirements.txt"], 0o644)


def test_requirements_install_this_package_offline(tmp_path, artifact):
    write_deployment(artifact, tmp_path / "deploy", model="openai:gpt-4o-mini", allow_modules=ALLOW)
    requirements = tmp_path / "deploy" / "requirements.txt"
    lines = [ln for ln in requirements.read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines == [f"microprompts @ {REPO.as_uri()}"]  # this checkout: no index holds the package
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    pip = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-index", "--no-build-isolation"]
    result = subprocess.run(
        [*pip, "-r", str(requirements)], capture_output=True, text=True, timeout=300, cwd=str(elsewhere)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Would install microprompts-" in result.stdout


def test_a_local_model_deployment_asks_for_the_local_extra(tmp_path, artifact):
    write_deployment(artifact, tmp_path / "d", allow_modules=ALLOW)
    assert f"microprompts[local] @ {REPO.as_uri()}" in (tmp_path / "d" / "requirements.txt").read_text()


def test_graph_ids():
    assert graph_id("seats") == "seats" and graph_id("my flow/v2") == "my_flow_v2" and graph_id("***") == "agent"


def test_deploy_command_and_no_secret_in_its_output(tmp_path, artifact):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENAI_API_KEY": SENTINEL}
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "microprompts.cli",
        "deploy",
        str(artifact),
        "--out",
        str(out),
        "--model",
        "openai:gpt-4o-mini",
        "--allow-module",
        "tests.serve.helpers",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=str(REPO))
    assert result.returncode == 0, result.stderr
    assert str(out / "agent.py") in result.stdout and "langgraph dev" in result.stderr
    for path in out.iterdir():
        assert SENTINEL.encode() not in path.read_bytes(), path
    assert SENTINEL not in result.stdout + result.stderr

    leaky = command[:-4] + ["--model", f"openai:x@http://127.0.0.1:9/v1?k={SENTINEL}"] + command[-2:]
    refused = subprocess.run(leaky, capture_output=True, text=True, timeout=120, env=env, cwd=str(REPO))
    assert refused.returncode == 2 and "secret" in refused.stderr and SENTINEL not in refused.stderr


LANGGRAPH = Path(sys.executable).with_name("langgraph")


def _langgraph_dev_missing() -> str | None:
    missing = [
        m for m in ("langgraph_cli", "langgraph_api", "langgraph_runtime_inmem") if importlib.util.find_spec(m) is None
    ]
    if missing or not LANGGRAPH.is_file():
        what = ", ".join(missing) or "the langgraph CLI"
        return (
            f"`langgraph dev` needs the optional extra langgraph-cli[inmem] (missing {what}); "
            "install it with pip install 'microprompts[langgraph-server]' to run this test"
        )
    return None


def _wait_until_up(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "langgraph dev did not come up: " + log.read_text()[-3000:]
        time.sleep(0.5)


@pytest.mark.skipif(_langgraph_dev_missing() is not None, reason=_langgraph_dev_missing() or "")
def test_langgraph_dev_serves_the_deployment(tmp_path, fake_openai):
    """Acceptance: a flow reference deployed, then served by LangGraph's own dev server (bound to 127.0.0.1, in
    the deploy directory, on a scripted model behind a fake OpenAI server): typed input schema, a run completes."""
    from langgraph_sdk import get_sync_client

    from tests.fakes import free_port

    fake = fake_openai(schema_responder())
    out = tmp_path / "deploy"
    write_deployment("tests.serve.helpers:seat_flow", out, model=f"openai:fake@{fake.base_url}", allow_modules=ALLOW)
    port = free_port()
    command = [str(LANGGRAPH), "dev", "--no-browser", "--port", str(port), "--host", "127.0.0.1", "--no-reload"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "LANGSMITH_TRACING": "false", "LANGCHAIN_TRACING_V2": "false"}
    log_path = tmp_path / "langgraph.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [*command, "--allow-blocking"], cwd=str(out), env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_until_up(proc, url, log_path)
            client = get_sync_client(url=url)
            assistants = client.assistants.search(graph_id="seats")
            assert isinstance(assistants, list) and assistants, "the deployed graph has no assistant"
            schema = client.assistants.get_schemas(assistants[0]["assistant_id"])["input_schema"]
            assert schema is not None and {"preferences", "available_seats"} <= set(schema["properties"])
            assert schema["properties"]["available_seats"]["type"] == "array"  # typed, as the MicroPrompt says
            assert schema["properties"]["preferences"]["type"] == "string"
            state = client.runs.wait(None, "seats", input=SEAT_INPUT)
            assert isinstance(state, dict) and state["top_seat"] == "economy_14A_window"
            assert fake.calls == 1
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
