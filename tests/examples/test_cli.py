"""The CLI on the examples: `evaluate --json` prints the summary object, a rerun is served from the cache, and
user errors print one `error:` line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import microprompts.nodes.runtime as runtime
from microprompts.cli import main
from tests.examples.oracles import seats_oracle

ROOT = Path(__file__).resolve().parents[2]
TEST = "examples/seats/data/test.jsonl"
FLOW = "examples/seats/flow.py:flow"
METRIC = "examples/seats/metric.py:seat_metric"
SUMMARY_KEYS = {"score", "n", "errors", "calls", "prompt_tokens", "completion_tokens", "seconds"}


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # FLOW and metric references are paths relative to the repository


def _fake_model(monkeypatch) -> None:
    rows = [json.loads(line) for line in (ROOT / TEST).read_text().splitlines()]
    model = seats_oracle(rows)
    monkeypatch.setattr(runtime, "resolve_model", lambda spec, *args, **kwargs: model)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    return err[0]


def test_evaluate_json_prints_the_summary_and_a_rerun_costs_no_calls(monkeypatch, capsys):
    _fake_model(monkeypatch)
    args = ["evaluate", FLOW, "--data", TEST, "--metric", METRIC, "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert SUMMARY_KEYS <= set(first)
    assert first["score"] == 1.0 and first["n"] == 40 and first["errors"] == 0 and first["calls"] == 40
    assert first["prompt_tokens"] > 0 and first["completion_tokens"] > 0
    assert main(args) == 0
    second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert second["calls"] == 0 and second["cached_calls"] == 40 and second["score"] == 1.0


def test_evaluate_module_reference_and_limit(monkeypatch, capsys):
    _fake_model(monkeypatch)
    args = ["evaluate", "examples.seats.flow:flow", "--data", TEST, "--metric", METRIC, "--limit", "5", "--json"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n"] == 5


def test_unknown_flow_reference_is_one_error_line(capsys):
    assert main(["evaluate", "examples/seats/flow.py:nope", "--data", TEST, "--metric", METRIC]) == 2
    assert "nope" in _one_error_line(capsys)
    assert main(["run", "examples/nowhere.py:flow", "--input", "{}"]) == 2
    assert "no such file" in _one_error_line(capsys)


def test_run_with_a_missing_input_key_is_one_error_line(capsys):
    assert main(["run", FLOW, "--input", '{"preferences": "an aisle seat"}']) == 2
    assert "available_seats" in _one_error_line(capsys)


def test_invalid_dataset_row_is_one_error_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    good = (ROOT / TEST).read_text().splitlines()[0]
    bad.write_text(good + '\n{"inputs": "not an object", "output": {}}\n')
    assert main(["evaluate", FLOW, "--data", str(bad), "--metric", METRIC, "--json"]) == 2
    line = _one_error_line(capsys)
    assert "line 2" in line and "inputs" in line


def test_run_prints_the_output_state(monkeypatch, capsys):
    _fake_model(monkeypatch)
    row = json.loads((ROOT / TEST).read_text().splitlines()[0])
    assert main(["run", FLOW, "--input", json.dumps(row["inputs"])]) == 0
    assert json.loads(capsys.readouterr().out) == row["output"]
