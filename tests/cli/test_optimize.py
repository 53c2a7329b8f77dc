"""The `microprompts optimize` command on a tiny flow with the simulated model patched in for `--model`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import microprompts.cli.optimize
from microprompts.cli import main
from microprompts.flows import Flow
from tests.cli.sim_run import FLOW
from tests.cli.sim_run import write_rows as _write
from tests.optimizers import engine_helpers as h


@pytest.fixture(autouse=True)
def _simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    model = h.model("cli")
    monkeypatch.setattr(microprompts.cli.optimize, "resolve_model", lambda spec, *args, **kwargs: model)


def _files(tmp_path: Path) -> dict[str, str]:
    return {
        "train": _write(tmp_path / "train.jsonl", h.rows(0, 8)),
        "dev": _write(tmp_path / "dev.jsonl", h.rows(100, 8)),
        "test": _write(tmp_path / "test.jsonl", h.rows(200, 4)),
    }


def _optimize(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["optimize", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_optimize_prints_one_json_line_and_writes_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = _files(tmp_path)
    out = tmp_path / "run"
    args = [
        FLOW,
        "--train",
        files["train"],
        "--dev",
        files["dev"],
        "--test",
        files["test"],
        "--metric",
        "exact_match:label",
        "--model",
        "sim",
        "--budget-calls",
        "80",
        "--out",
        str(out),
        "--seed",
        "3",
        "--minibatch",
        "4",
        "--no-progress",
        "--kind",
        "structure",
    ]
    code, stdout, stderr = _optimize(capsys, *args)
    assert code == 0, stderr
    lines = stdout.strip().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    for key in (
        "baseline_dev",
        "best_dev",
        "baseline_test",
        "best_test",
        "calls",
        "optimizer_calls",
        "tokens",
        "seconds",
    ):
        assert key in summary, key
    assert summary["best_dev"] >= summary["baseline_dev"] and summary["calls"] > 0
    for name in ("best.json", "journal.jsonl", "report.html"):
        assert (out / name).is_file(), name
    assert Flow.load(str(out / "best.json")).name == "topic"
    assert "lineage" in stderr
    code, stdout, _ = _optimize(capsys, *args, "--resume")
    again = json.loads(stdout.strip())
    assert code == 0 and again["calls"] == 0 and again["best_id"] == summary["best_id"]


def test_a_split_file_supplies_dev_and_test(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def raw(rows: list[Any]) -> list[dict[str, Any]]:
        return [{"input": r.inputs["headline"], "output": r.output["label"]} for r in rows]

    split = {
        "task_id": "topic",
        "instructions": ["Label it."],
        "d_incontext": [],
        "d_train": raw(h.rows(0, 6)),
        "d_val": raw(h.rows(100, 6)),
        "d_test": raw(h.rows(200, 3)),
    }
    path = tmp_path / "split.json"
    path.write_text(json.dumps(split))
    code, stdout, stderr = _optimize(
        capsys,
        FLOW,
        "--train",
        str(path),
        "--metric",
        "exact_match:label",
        "--map",
        "input=inputs.headline",
        "--map",
        "output=output.label",
        "--model",
        "sim",
        "--budget-calls",
        "30",
        "--out",
        str(tmp_path / "r"),
        "--no-progress",
    )
    assert code == 0, stderr
    summary = json.loads(stdout.strip())
    assert summary["baseline_test"] is not None


def test_errors_are_one_line_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = _files(tmp_path)
    code, _, stderr = _optimize(
        capsys,
        FLOW,
        "--train",
        files["train"],
        "--dev",
        files["dev"],
        "--metric",
        "exact_match:label",
        "--search",
        "bogus",
    )
    assert code == 2 and stderr.count("\n") == 1 and "bogus" in stderr
    code, _, stderr = _optimize(capsys, FLOW, "--train", files["train"], "--metric", "exact_match:label")
    assert code == 2 and "--dev is required" in stderr
    code, _, stderr = _optimize(
        capsys,
        "tests.optimizers.engine_helpers:LABELS",
        "--train",
        files["train"],
        "--dev",
        files["dev"],
        "--metric",
        "exact_match:label",
    )
    assert code == 2 and "not a microprompts Flow" in stderr


def test_ctrl_c_says_the_run_can_be_resumed_and_exits_130(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(microprompts.cli.optimize.Optimizer, "run", interrupted)
    files = _files(tmp_path)
    code, _, stderr = _optimize(
        capsys,
        FLOW,
        "--train",
        files["train"],
        "--dev",
        files["dev"],
        "--metric",
        "exact_match:label",
        "--model",
        "sim",
        "--out",
        str(tmp_path / "run"),
        "--no-progress",
    )
    assert code == 130 and stderr.count("\n") == 1 and "--resume" in stderr and str(tmp_path / "run") in stderr


def test_rows_without_the_expected_field_fail_before_any_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _files(tmp_path)
    code, _, stderr = _optimize(
        capsys,
        FLOW,
        "--train",
        files["train"],
        "--dev",
        files["dev"],
        "--metric",
        "exact_match:topic",
        "--model",
        "sim",
        "--out",
        str(tmp_path / "run"),
        "--no-progress",
    )
    assert code == 2 and "has no expected output ['topic']" in stderr
    assert not (tmp_path / "run" / "calls.sqlite").exists()


def test_limits_take_the_first_rows_of_each_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, int] = {}

    def fake_run(self: Any, target: Any, *, train: Any, dev: Any, test: Any, **kwargs: Any) -> Any:
        seen.update(train=len(train), dev=len(dev), test=len(test))
        raise RuntimeError("stopped by the test")

    monkeypatch.setattr(microprompts.cli.optimize.Optimizer, "run", fake_run)
    files = _files(tmp_path)
    code, _, err = _optimize(
        capsys,
        FLOW,
        *("--train", files["train"], "--dev", files["dev"], "--test", files["test"]),
        *("--metric", "exact_match:label", "--train-limit", "3", "--dev-limit", "2", "--test-limit", "1"),
    )
    assert code == 2 and "stopped by the test" in err
    assert seen == {"train": 3, "dev": 2, "test": 1}
    code, _, err = _optimize(capsys, FLOW, "--train", files["train"], "--metric", "exact_match", "--dev-limit", "0")
    assert code == 2 and err.count("\n") == 1 and "--dev-limit" in err
