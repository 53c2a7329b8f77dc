"""Every way the command line can fail ends in one `error:` line and exit 2 (Ctrl-C: 130), never a traceback:
usage mistakes (typer's own exceptions), bad values, and a user's node that raises."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from microprompts import __version__
from microprompts.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"microprompts {__version__}"


def test_no_arguments_show_the_help(capfd: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "Usage: microprompts" in capfd.readouterr().out


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["run", "examples/seats/flow.py:flow"], "Missing option '--input'"),
        (["evaluate", "examples/seats/flow.py:flow", "--limt", "2"], "No such option: --limt"),
        (["serve", "x.json", "--port", "abc"], "Invalid value for '--port'"),
        (
            ["evaluate", "examples/seats/flow.py:flow", "--data", "x.jsonl", "--metric", "exact_match", "--limit", "0"],
            "Invalid value for '--limit'",
        ),
        (
            [
                "evaluate",
                "examples/seats/flow.py:flow",
                "--data",
                "x.jsonl",
                "--metric",
                "exact_match",
                "--limit",
                "-2",
            ],
            "Invalid value for '--limit'",
        ),
        (["nope"], "No such command 'nope'"),
    ],
)
def test_usage_mistakes_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], args: list[str], says: str) -> None:
    assert main(args) == 2
    line = _one_line(capsys)
    assert says in line and "--help" in line


def test_a_node_that_raises_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "tests.cli._flows:broken", "--input", json.dumps({"question": "q"})]) == 2
    assert "ZeroDivisionError" in _one_line(capsys)


def test_ctrl_c_exits_130(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "tests.cli._flows:interrupted", "--input", json.dumps({"question": "q"})]) == 130
    assert _one_line(capsys) == "error: interrupted"


def test_every_help_shows_the_model_spec_with_its_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--help"]) == 0
    assert "openai:NAME[@URL]" in capsys.readouterr().out.replace("\n", " ")


def _rows(tmp_path: Path, rows: list[dict]) -> str:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def test_rows_without_the_flows_inputs_fail_before_any_call(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _rows(tmp_path, [{"input": "Go left.", "target": "No"}])
    assert (
        main(
            [
                "evaluate",
                "examples/bbh/flow.py:flow",
                "--data",
                data,
                "--metric",
                "exact_match:answer",
                "--model",
                "openai:x@http://127.0.0.1:9/v1",
            ]
        )
        == 2
    )
    line = _one_line(capsys)
    assert "row 1 has no input(s) ['question']" in line and "--map" in line


def test_rows_without_the_metrics_expected_field_fail_before_any_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _rows(tmp_path, [{"inputs": {"question": "Go left."}, "output": {"label": "No"}}])
    assert (
        main(
            [
                "evaluate",
                "examples/bbh/flow.py:flow",
                "--data",
                data,
                "--metric",
                "exact_match:answer",
                "--model",
                "openai:x@http://127.0.0.1:9/v1",
            ]
        )
        == 2
    )
    assert "row 1 has no expected output ['answer']" in _one_line(capsys)


def test_a_run_where_every_row_failed_exits_1_with_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MICROPROMPTS_TIMEOUT", "2")
    data = _rows(tmp_path, [{"inputs": {"question": "Go left."}, "output": {"answer": "No"}}])
    assert (
        main(
            [
                "evaluate",
                "examples/bbh/flow.py:flow",
                "--data",
                data,
                "--metric",
                "exact_match:answer",
                "--model",
                "openai:x@http://127.0.0.1:9/v1",
                "--json",
            ]
        )
        == 1
    )
    captured = capsys.readouterr()
    assert json.loads(captured.out)["errors"] == 1
    assert captured.err.startswith("error: every row failed") and captured.err.count("\n") == 1
    assert "hint: check --model" in captured.err
