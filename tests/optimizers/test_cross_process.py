"""Determinism across processes (different hash seeds) with every default mutator, and resume after a hard kill
(os._exit in the middle of a run: no cleanup, like SIGKILL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(run_dir: Path, hash_seed: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONHASHSEED": str(hash_seed), "MICROPROMPTS_CACHE": "off"}
    return subprocess.run(
        [sys.executable, "-m", "tests.optimizers.run_in_process", str(run_dir), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _events(run_dir: Path) -> list[tuple[str, str | None]]:
    return [(e["event"], e.get("id")) for e in map(json.loads, (run_dir / "journal.jsonl").read_text().splitlines())]


def _paid(run_dir: Path) -> int:
    log = run_dir.parent / f"{run_dir.name}.calls.log"
    return len(log.read_text().splitlines()) if log.is_file() else 0


def test_a_killed_run_resumed_in_another_process_ends_like_an_uninterrupted_one(tmp_path: Path) -> None:
    reference = _run(tmp_path / "a", 1)
    assert reference.returncode == 0, reference.stderr[-2000:]
    summary = json.loads(reference.stdout.strip().splitlines()[-1])
    assert _paid(tmp_path / "a") > 60

    killed = _run(tmp_path / "b", 2, "--die-after", "60")
    assert killed.returncode == 9, killed.stderr[-2000:]
    assert not (tmp_path / "b" / "best.json").exists()
    resumed = _run(tmp_path / "b", 3, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    again = json.loads(resumed.stdout.strip().splitlines()[-1])

    assert again["best_id"] == summary["best_id"] and again["best_test"] == summary["best_test"]
    assert (tmp_path / "b" / "best.json").read_text() == (tmp_path / "a" / "best.json").read_text()
    assert _events(tmp_path / "b") == _events(tmp_path / "a")
    assert _paid(tmp_path / "b") <= _paid(tmp_path / "a") + 4  # at most the calls in flight at the kill
