"""Issue 24's kill acceptance under Ray: an optimization whose model runs on Ray actors, killed with SIGKILL mid-run,
then resumed in another process, pays every call exactly once across the two processes (as many as an uninterrupted
Ray run) and ends with the same journal and best artifact.

The run (tests/optimizers/run_in_process.py, each in its own process with its own local Ray) logs each paid call
before sending it and, from call N+1 on, blocks instead of sending and marks DIR.held. The test kills it once every
logged call is answered and cached (the run directory's cache holds N replies): no call is in flight at the kill, so
"paid twice" cannot hide behind the calls a kill interrupts. Skipped without Ray (an extra).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'microprompts[ray]'")

ROOT = Path(__file__).resolve().parents[2]
MODULE = "tests.optimizers.run_in_process"


def _env(hash_seed: int) -> dict[str, str]:
    env = {**os.environ, "PYTHONHASHSEED": str(hash_seed), "MICROPROMPTS_CACHE": "off"}
    env.pop("RAY_ADDRESS", None)  # each run starts its own local Ray
    return env


def _command(run_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", MODULE, str(run_dir), "--executor", "ray", *args]


def _finish(run_dir: Path, hash_seed: int, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        _command(run_dir, *args), cwd=ROOT, env=_env(hash_seed), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _paid(run_dir: Path) -> int:
    log = run_dir.parent / f"{run_dir.name}.calls.log"
    return len(log.read_text().splitlines()) if log.is_file() else 0


def _cached(run_dir: Path) -> int:
    """Replies in the run directory's call cache (read beside the live run: SQLite in WAL mode)."""
    path = run_dir / "calls.sqlite"
    if not path.is_file():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0])
    except sqlite3.OperationalError:  # the table is not made yet
        return 0


def _events(run_dir: Path) -> list[tuple[str, str | None]]:
    return [(e["event"], e.get("id")) for e in map(json.loads, (run_dir / "journal.jsonl").read_text().splitlines())]


def _kill_when_held(run_dir: Path, hold_after: int, log: Path) -> None:
    """Start the run; SIGKILL it once it holds call N+1 and its N paid calls are all cached (none in flight)."""
    held = run_dir.parent / f"{run_dir.name}.held"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            _command(run_dir, "--hold-after", str(hold_after)),
            cwd=ROOT,
            env=_env(2),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so the Ray processes it left can be stopped after
        )
        try:
            deadline = time.monotonic() + 240
            while not (held.is_file() and _cached(run_dir) >= hold_after):
                assert proc.poll() is None, f"the run ended before it could be killed:\n{log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, (
                    f"no hold with every paid call cached ({_paid(run_dir)} paid, {_cached(run_dir)} cached, "
                    f"held: {held.is_file()}):\n{log.read_text()[-3000:]}"
                )
                time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the agents of the killed run's local Ray outlive it
    assert proc.returncode == -signal.SIGKILL


def test_a_sigkilled_ray_run_resumes_paying_no_call_twice(tmp_path: Path) -> None:
    reference = _finish(tmp_path / "a", 1)
    paid_reference = _paid(tmp_path / "a")
    assert paid_reference == reference["calls"] > 20

    killed = tmp_path / "b"
    hold_after = paid_reference // 2
    _kill_when_held(killed, hold_after, tmp_path / "killed.log")
    assert _paid(killed) == _cached(killed) == hold_after  # everything paid is cached, nothing was in flight
    assert not (killed / "best.json").exists(), "the run finished before the kill"

    resumed = _finish(killed, 3, "--resume")
    assert _paid(killed) == paid_reference  # the calls before the kill plus the resumed run's: each paid once
    assert resumed["calls"] == paid_reference - hold_after
    assert resumed["best_id"] == reference["best_id"] and resumed["best_test"] == reference["best_test"]
    assert (killed / "best.json").read_text() == (tmp_path / "a" / "best.json").read_text()
    assert _events(killed) == _events(tmp_path / "a")
