"""The peers harness keeps every cell when two harness runs write the same results file."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.benchmarks._peers import load_peers_module


def load_harness() -> ModuleType:
    return load_peers_module("run")


class FakeServers:
    def __init__(self, *args: object) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


@pytest.fixture
def harness(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    run = load_harness()
    monkeypatch.setattr(run, "ensure_venv", lambda name: Path(sys.executable))
    monkeypatch.setattr(run, "get_model", lambda name: "/models/fake.gguf")
    monkeypatch.setattr(run, "wait_for_llama_server_package", lambda timeout: None)
    monkeypatch.setattr(run, "Servers", FakeServers)
    monkeypatch.setattr(run, "prepare", lambda *args: {"sizes": {}})
    monkeypatch.setattr(run, "git_commit", lambda: "abc123")
    monkeypatch.setattr(run.report, "write_all", lambda *args: None)
    return run


def harness_argv(tmp_path: Path, task: str, *systems: str) -> list[str]:
    """The harness's command line for one task, writing into tmp_path, at a budget of 10 calls."""
    out, work = str(tmp_path / "peers"), str(tmp_path / "work")
    return ["--tasks", task, "--systems", *systems, "--out", out, "--work", work, "--budget-calls", "10"]


def test_a_cell_written_by_another_run_meanwhile_is_kept_and_not_run_again(
    harness: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "peers.json"
    out.write_text(json.dumps({"notes": "kept notes", "cells": {"seats/sammo": {"status": "ok"}}}))
    ran: list[str] = []

    def fake_cell(task: str, system: str, args: object, data_dir: Path, work: Path, settings: dict) -> dict:
        ran.append(system)
        # Another harness instance finishes navigate/sammo while this one runs navigate/baseline.
        other = json.loads(out.read_text())
        other["cells"]["navigate/sammo"] = {"status": "ok", "settings": settings, "test_score": 0.4}
        out.write_text(json.dumps(other))
        return {"task": task, "system": system, "status": "ok", "settings": settings, "wall_seconds": 1.0}

    monkeypatch.setattr(harness, "run_cell", fake_cell)
    assert harness.main(harness_argv(tmp_path, "navigate", "baseline", "sammo")) == 0

    saved = json.loads(out.read_text())
    assert ran == ["baseline"]
    assert set(saved["cells"]) == {"seats/sammo", "navigate/sammo", "navigate/baseline"}
    assert saved["cells"]["navigate/sammo"]["test_score"] == 0.4
    assert saved["notes"] == "kept notes"
    assert [r["systems"] for r in saved["runs"]] == [["baseline", "sammo"]]


def test_an_unfinished_cell_runs_again_and_a_finished_one_does_not(
    harness: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "peers.json"
    settings = {
        "budget_calls": 10,
        "train": 50,
        "dev": 30,
        "test": 50,
        "seed": 0,
        "model": "qwen-0.5b",
        "n_ctx": 4096,
        "max_tokens_cap": 512,
    }
    out.write_text(
        json.dumps(
            {
                "cells": {
                    "hotpot/dspy-mipro": {
                        "status": "unfinished",
                        "settings": settings,
                        "error": "stopped with the session",
                    },
                    "hotpot/dspy-gepa": {"status": "ok", "settings": settings, "test_score": 0.15},
                }
            }
        )
    )
    ran: list[str] = []

    def fake_cell(task: str, system: str, args: object, data_dir: Path, work: Path, settings: dict) -> dict:
        ran.append(system)
        return {"task": task, "system": system, "status": "ok", "settings": settings, "wall_seconds": 1.0}

    monkeypatch.setattr(harness, "run_cell", fake_cell)
    assert harness.main(harness_argv(tmp_path, "hotpot", "dspy-mipro", "dspy-gepa")) == 0

    saved = json.loads(out.read_text())
    assert ran == ["dspy-mipro"]
    assert saved["cells"]["hotpot/dspy-mipro"]["status"] == "ok"
    assert saved["cells"]["hotpot/dspy-gepa"]["test_score"] == 0.15
