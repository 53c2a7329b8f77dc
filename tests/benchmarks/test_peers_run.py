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


def test_each_seed_runs_every_system_on_its_own_draw_under_its_own_key(
    harness: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list[tuple[str, int]] = []
    monkeypatch.setattr(
        harness, "prepare", lambda task, out, *sizes: drawn.append((Path(out).name, sizes[-1])) or {"sizes": {}}
    )
    ran: list[tuple[str, int]] = []

    def fake_cell(task: str, system: str, args: object, data_dir: Path, work: Path, settings: dict) -> dict:
        ran.append((system, settings["seed"]))
        return {"task": task, "system": system, "status": "ok", "settings": settings, "wall_seconds": 1.0}

    monkeypatch.setattr(harness, "run_cell", fake_cell)
    argv = [*harness_argv(tmp_path, "navigate", "baseline", "sammo"), "--seeds", "0", "2"]
    assert harness.main(argv) == 0
    assert drawn == [("navigate", 0), ("navigate.s2", 2)]
    assert ran == [("baseline", 0), ("sammo", 0), ("baseline", 2), ("sammo", 2)]
    saved = json.loads((tmp_path / "peers.json").read_text())
    assert set(saved["cells"]) == {"navigate/baseline", "navigate/sammo", "navigate/baseline@s2", "navigate/sammo@s2"}
    ran.clear()
    assert harness.main(argv) == 0  # done: nothing runs again
    assert ran == []


@pytest.mark.parametrize("task", ["object_counting", "implicatures", "seats"])
def test_a_seed_changes_the_train_and_dev_draw_never_the_test_rows(task: str, tmp_path: Path) -> None:
    run = load_harness()
    source = run.TASKS[task]["source"]
    if "repository" not in source and not (Path(__file__).resolve().parents[3] / "shared" / "data" / source).is_file():
        pytest.skip(f"../shared/data is absent: {task}'s rows are read from there")
    ids = {}
    for seed in (0, 1):
        run.prepare(task, tmp_path / str(seed), 20, 10, 15, seed)
        ids[seed] = {
            part: [json.loads(line)["id"] for line in (tmp_path / str(seed) / f"{part}.jsonl").read_text().splitlines()]
            for part in ("train", "dev", "test")
        }
    assert ids[0]["test"] == ids[1]["test"] and len(ids[0]["test"]) == 15
    assert ids[0]["train"] != ids[1]["train"]
    for seed in (0, 1):
        assert not set(ids[seed]["test"]) & set(ids[seed]["train"] + ids[seed]["dev"])
