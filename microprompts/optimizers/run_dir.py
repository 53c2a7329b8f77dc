"""A run directory's bookkeeping: its call cache, its identity (``run.json``, which `resume` checks) and its lock
(one optimize at a time in a directory)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from microprompts._io import atomic_write_text
from microprompts.models import CallCache
from microprompts.optimizers.journal import ResumeError

__all__ = ["RunLockedError", "check_run", "open_cache", "run_lock"]


def open_cache(run_dir: Path | None) -> CallCache:
    """The run's call cache: in the run directory, else the user's (in memory with MICROPROMPTS_CACHE=off)."""
    if run_dir is not None:
        return CallCache(run_dir / "calls.sqlite")
    if os.environ.get("MICROPROMPTS_CACHE", "").lower() in {"off", "0", "none"}:
        return CallCache(":memory:")
    return CallCache()


def check_run(run_dir: Path, fingerprint: dict[str, Any], resume: bool) -> None:
    """On resume, refuse a run directory that holds a different run; otherwise record this run's identity."""
    path = run_dir / "run.json"
    if resume and path.is_file():
        try:
            recorded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ResumeError(
                f"cannot resume {run_dir}: {path} cannot be read ({exc}); start the run over without "
                "--resume, or in another directory"
            ) from exc
        if not isinstance(recorded, dict):
            raise ResumeError(f"cannot resume {run_dir}: {path} does not hold a run's settings")
        differs = sorted(k for k in set(recorded) | set(fingerprint) if recorded.get(k) != fingerprint.get(k))
        if differs:
            raise ResumeError(f"cannot resume {run_dir}: it holds a run with a different {', '.join(differs)}")
        return
    atomic_write_text(path, json.dumps(fingerprint, indent=2, sort_keys=True, default=str) + "\n")


def run_lock(run_dir: Path) -> FileLock:
    """The run directory's lock, taken now: a second run in the same directory gets one clear error instead of
    interleaving its journal with the first one's."""
    lock = FileLock(str(run_dir / ".lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise RunLockedError(
            f"another optimize is running in {run_dir} (it holds {run_dir / '.lock'}): wait for it "
            "to finish, or choose another --out"
        ) from None
    return lock


class RunLockedError(RuntimeError):
    """Another process is optimizing in the same run directory."""
