"""`microprompts optimize --search pareto`, and `--optimizer-model`: unset the task model serves (said once on
stderr, stdout still one JSON line), `none` leaves the model-based operators out; `reoptimize` follows the same rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import microprompts.cli.monitor
import microprompts.cli.optimize
from microprompts.cli import main
from microprompts.optimizers.optimize import TASK_MODEL
from tests.cli.sim_run import run_args
from tests.cli.test_monitor import _deploy, _store
from tests.optimizers import engine_helpers as h

LINE = "optimizer model: the task model"


@pytest.fixture(autouse=True)
def _simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    model = h.model("cli")
    monkeypatch.setattr(microprompts.cli.optimize, "resolve_model", lambda spec, *args, **kwargs: model)


def _optimize(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str, Path]:
    out = tmp_path / "run"
    args = ["optimize", *run_args(tmp_path, out), *extra]
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err, out


def test_search_pareto_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, stderr, out = _optimize(tmp_path, capsys, "--search", "pareto", "--optimizer-model", "none")
    assert code == 0, stderr
    summary = json.loads(stdout.strip())
    assert summary["calls"] > 0 and summary["best_dev"] >= summary["baseline_dev"]
    recorded = json.loads((out / "run.json").read_text())
    assert recorded["search"]["name"] == "pareto" and recorded["optimizer_model"] is None
    assert LINE not in stderr and (out / "best.json").is_file()


def test_an_unknown_search_names_pareto_among_the_choices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, stderr, _ = _optimize(tmp_path, capsys, "--search", "gepa")
    assert code == 2 and "pareto" in stderr


def test_unset_optimizer_model_is_the_task_model_said_once_off_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stdout, stderr, out = _optimize(tmp_path, capsys, "--kind", "content")
    assert code == 0, stderr
    assert len(stdout.strip().splitlines()) == 1 and stderr.count(LINE) == 1
    recorded = json.loads((out / "run.json").read_text())
    assert recorded["optimizer_model"] == TASK_MODEL and "reflect" in recorded["mutators"]
    code, _, stderr, _ = _optimize(tmp_path, capsys, "--kind", "content", "--optimizer-model", "None", "--resume")
    assert code != 0 and "optimizer_model" in stderr  # the run there chose the task model


def test_reoptimize_follows_the_same_optimizer_model_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    deployed, content_hash = _deploy(tmp_path)
    store = _store(tmp_path, content_hash)
    seen: list[Any] = []

    class Tie:
        best = h.topic_flow()
        test_baseline = test_best = 0.5

    def fake_optimize(*args: Any, **kwargs: Any) -> Tie:
        seen.append(kwargs["optimizer_model"])
        return Tie()

    monkeypatch.setattr(microprompts.cli.monitor, "optimize", fake_optimize)
    args = ["reoptimize", store, "--from", deployed, "--below", "0.9", "--out", str(tmp_path / "new.json")]
    assert main(args) == 0
    assert main([*args, "--optimizer-model", "NONE"]) == 0
    assert seen == [None, "none"]  # unset: the task model serves; none: the no-model operators only
