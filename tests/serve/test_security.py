"""Security of the served agent: artifacts import only allowed modules (never a file), the server binds
127.0.0.1 by default, and secrets never reach the run store or the logs."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from microprompts.cli.serve import _is_loopback, serve
from microprompts.flows import ArtifactError, content_hash
from microprompts.serve import RunRecord, RunStore
from microprompts.serve.app import create_app
from tests.serve.helpers import REPO, seat_flow


def _artifact_with_function(tmp_path: Path, ref: str) -> Path:
    """The seat artifact with its function node pointing at `ref` (hash recomputed, as an attacker would)."""
    data: dict[str, Any] = seat_flow().to_dict()
    data["nodes"][1]["fn"] = ref
    data["content_hash"] = content_hash(data)
    path = tmp_path / "tampered.json"
    path.write_text(__import__("json").dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "ref", ["os.path:join", "subprocess:run", "tests.serve._side_effect:fn", "microprompts_evil:fn", "examplesx:fn"]
)
def test_create_app_refuses_disallowed_modules(tmp_path, ref, monkeypatch):
    mark = tmp_path / "mark"
    monkeypatch.setenv("MICROPROMPTS_TEST_MARK", str(mark))
    with pytest.raises(ArtifactError, match="not in the allowed modules"):
        create_app(_artifact_with_function(tmp_path, ref))
    assert not mark.exists()


def test_file_references_never_run(tmp_path, monkeypatch):
    mark = tmp_path / "mark"
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(mark)!r}, 'w').write('ran')\ndef fn(state):\n    return {{}}\n", encoding="utf-8")
    with pytest.raises(ArtifactError, match="names a file"):
        create_app(_artifact_with_function(tmp_path, f"{evil}:fn"), allow_modules=["microprompts", "tests"])
    assert not mark.exists()


def test_allowed_module_loads(tmp_path):
    app = create_app(
        _artifact_with_function(tmp_path, "tests.serve.helpers:summarize"),
        model="openai:x@http://127.0.0.1:9/v1",
        allow_modules=["tests.serve.helpers"],
    )
    assert app.state.agent.flow.nodes["summarize"].ref == "tests.serve.helpers:summarize"


def test_serve_command_refuses_a_disallowed_artifact_with_one_line(tmp_path):
    mark = tmp_path / "mark"
    path = _artifact_with_function(tmp_path, "tests.serve._side_effect:fn")
    result = subprocess.run(
        [sys.executable, "-m", "microprompts.cli", "serve", str(path), "--port", "9", "--no-store"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(REPO),
        env={**__import__("os").environ, "PYTHONPATH": str(REPO), "MICROPROMPTS_TEST_MARK": str(mark)},
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "not in the allowed modules" in lines[0]
    assert "Traceback" not in result.stderr and not mark.exists()


def test_binds_loopback_by_default():
    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("localhost")
    assert not _is_loopback("0.0.0.0") and not _is_loopback("192.168.1.4")


def test_store_scrubs_secret_values(tmp_path, monkeypatch):
    secret = "sk-live-abcdefghijklmnop"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-1234567890")
    store = RunStore(tmp_path / "runs.sqlite")
    store.record(
        RunRecord(
            id="r1",
            flow="f",
            inputs={"q": f"key={secret}"},
            outputs={"a": "tok-1234567890"},
            traces=[{"replies": [secret]}],
            error=f"failed with {secret}",
        )
    )
    store.add_feedback("r1", 1.0, f"my key is {secret}")
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert secret.encode() not in raw and b"tok-1234567890" not in raw
    again = RunStore(tmp_path / "runs.sqlite").get("r1")
    assert again is not None and again["inputs"] == {"q": "key=[redacted]"}
    assert again["error"] == "failed with [redacted]"


def _serve_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in __import__("os").environ.items() if k != "MICROPROMPTS_API_KEY"}
    return subprocess.run(
        [sys.executable, "-m", "microprompts.cli", "serve", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(REPO),
        env={**clean, "PYTHONPATH": str(REPO), **env},
    )


def test_serve_refuses_a_non_loopback_bind_without_a_key(tmp_path):
    path = tmp_path / "seats.json"
    seat_flow().save(str(path))
    for host in ("0.0.0.0", "192.168.1.4"):
        result = _serve_cli([str(path), "--host", host, "--port", "9", "--no-store"], {})
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: binding ") and "--api-key" in lines[0]
    weak = _serve_cli([str(path), "--host", "0.0.0.0", "--port", "9", "--no-store", "--api-key", "abc123"], {})
    assert weak.returncode == 2 and "too short" in weak.stderr and "abc123" not in weak.stderr


def test_the_key_never_reaches_the_log_or_the_store(tmp_path, fake_openai):
    import httpx

    from tests.serve.helpers import SEAT_INPUT, schema_responder, served

    key = "cli-key-SENTINEL-0123456789abcdef"
    artifact = tmp_path / "seats.json"
    seat_flow().save(str(artifact))
    fake = fake_openai(schema_responder())
    store_path, log_path = tmp_path / "runs.sqlite", tmp_path / "serve.log"
    args = [
        str(artifact),
        "--model",
        f"openai:fake@{fake.base_url}",
        "--store",
        str(store_path),
        "--api-key",
        key,
        "--allow-module",
        "tests.serve.helpers",
        "--log-level",
        "debug",
    ]
    with served(args, log_path) as base, httpx.Client(base_url=base, timeout=30) as http:
        assert http.post("/invoke", json={"input": SEAT_INPUT}).status_code == 401
        wrong = http.post("/invoke", json={"input": SEAT_INPUT}, headers={"authorization": f"Bearer {key[:-1]}"})
        assert wrong.status_code == 401 and key not in wrong.text
        auth = {"authorization": f"Bearer {key}"}
        ok = http.post("/invoke", json={"input": {**SEAT_INPUT, "preferences": f"my key {key}"}}, headers=auth)
        assert ok.status_code == 200, ok.text
        bad = http.post("/invoke", json={"input": {"preferences": key}}, headers=auth)
        assert bad.status_code == 422 and key not in bad.text
        stored = http.get(f"/runs/{ok.json()['run_id']}", headers=auth).json()
        assert stored["inputs"]["preferences"] == "my key [redacted]"
    for path in [*tmp_path.glob("runs.sqlite*"), log_path]:
        assert key.encode() not in path.read_bytes(), path
    assert "API key required" in log_path.read_text()
