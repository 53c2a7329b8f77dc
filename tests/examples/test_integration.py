"""The CLI evaluates the seat example on the embedded model for real, twice: the rerun is all cache hits."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from microprompts.models import ModelSpecError, smollm2_path

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _unavailable() -> str | None:
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed (pip install 'microprompts[local]')"
    try:
        smollm2_path()
    except ModelSpecError as exc:
        return str(exc)
    return None


def _evaluate(data: Path, cache: Path) -> dict:
    # One llama.cpp thread: its spinning workers crawl on a busy shared machine (see tests/integration/conftest).
    env = {**os.environ, "MICROPROMPTS_CACHE": str(cache), "MICROPROMPTS_THREADS": "1"}
    args = [
        sys.executable,
        "-m",
        "microprompts.cli",
        "evaluate",
        "examples/seats/flow.py:flow",
        "--data",
        str(data),
        "--metric",
        "examples/seats/metric.py:seat_metric",
        "--model",
        "local",
        "--json",
    ]
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_cli_evaluate_on_the_embedded_model_twice_second_run_makes_no_calls(tmp_path):
    reason = _unavailable()
    if reason:
        pytest.skip(reason)
    data = tmp_path / "rows.jsonl"
    data.write_text("".join((ROOT / "examples/seats/data/test.jsonl").read_text().splitlines(True)[:2]))
    cache = tmp_path / "calls.sqlite"
    first = _evaluate(data, cache)
    assert {"score", "n", "errors", "calls", "prompt_tokens", "completion_tokens", "seconds"} <= set(first)
    assert first["n"] == 2 and first["errors"] == 0 and first["calls"] >= 2
    assert first["prompt_tokens"] > 100 and first["completion_tokens"] > 0 and 0.0 <= first["score"] <= 1.0
    second = _evaluate(data, cache)
    assert second["calls"] == 0 and second["cached_calls"] == first["calls"]
    assert second["score"] == first["score"] and second["prompt_tokens"] == 0
