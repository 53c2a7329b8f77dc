"""`--executor` and `--replicas` on `microprompts evaluate`: a bad executor or a missing Ray is one `error:` line
before anything is loaded; the local executor evaluates as before."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import microprompts.evals
from microprompts.cli import main

ROOT = Path(__file__).resolve().parents[2]
SEATS = [
    "evaluate",
    "examples/seats/flow.py:flow",
    "--data",
    "examples/seats/data/dev.jsonl",
    "--metric",
    "examples/seats/metric.py:seat_metric",
]


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_an_unknown_executor_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*SEATS, "--executor", "spark"]) == 2
    assert "expected local, ray or ray:ADDRESS" in _error(capsys)


def test_a_missing_ray_names_the_extra(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.delitem(sys.modules, "microprompts.evals._ray", raising=False)
    monkeypatch.delattr(microprompts.evals, "_ray", raising=False)  # loaded by an earlier test
    assert main([*SEATS, "--executor", "ray", "--replicas", "2"]) == 2
    assert "pip install 'microprompts[ray]'" in _error(capsys)


def test_replicas_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*SEATS, "--replicas", "0"]) == 2
    assert "--replicas" in _error(capsys)


def test_optimize_takes_the_executor_options(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = "examples/seats/data"
    args = ["optimize", "examples/seats/flow.py:flow", "--train", f"{data}/train.jsonl", "--dev", f"{data}/dev.jsonl"]
    args += ["--metric", "examples/seats/metric.py:seat_metric", "--out", str(tmp_path / "run"), "--no-progress"]
    assert main([*args, "--executor", "spark", "--replicas", "2"]) == 2
    assert "expected local, ray or ray:ADDRESS" in _error(capsys)
    assert not (tmp_path / "run" / "journal.jsonl").exists()  # refused before any work
