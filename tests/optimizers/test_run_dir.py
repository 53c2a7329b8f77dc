"""A run directory holds one run at a time (a second gets one clear error), and a corrupt run.json is named."""

from __future__ import annotations

from pathlib import Path

import pytest
from filelock import FileLock

from microprompts.evals import exact_match
from microprompts.optimizers import Budget, ResumeError, RunLockedError, optimize
from tests.optimizers import engine_helpers as h


def _optimize(run_dir: Path, resume: bool = False) -> object:
    return optimize(
        h.topic_flow(),
        train=h.rows(0, 6),
        dev=h.rows(100, 6),
        metric=exact_match("label"),
        model=h.model(),
        budget=Budget(calls=30),
        run_dir=run_dir,
        resume=resume,
        progress=False,
        mutators=h.search_mutators(),
    )


def test_a_second_run_in_the_same_directory_is_refused(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    with FileLock(str(tmp_path / ".lock")):  # the first run, still going
        with pytest.raises(RunLockedError, match="another optimize is running"):
            _optimize(tmp_path)
    assert not (tmp_path / "journal.jsonl").exists()
    _optimize(tmp_path)  # once it is done, the directory is free again
    assert (tmp_path / "best.json").is_file()


def test_a_corrupt_run_json_is_named(tmp_path: Path) -> None:
    _optimize(tmp_path)
    (tmp_path / "run.json").write_text("{ not json", encoding="utf-8")
    with pytest.raises(ResumeError, match="run.json cannot be read"):
        _optimize(tmp_path, resume=True)
