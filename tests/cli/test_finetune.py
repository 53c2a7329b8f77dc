"""The `microprompts export-finetune` command: from rows (scored) and from a run store (feedback), and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import microprompts.cli.finetune
from microprompts.cli import main
from microprompts.serve import RunRecord, RunStore
from tests.evals import _finetune_flow as ff

FLOW = "tests.evals._finetune_flow:FLOW"


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["export-finetune", FLOW, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_from_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    model = ff.model()
    monkeypatch.setattr(microprompts.cli.finetune, "resolve_model", lambda spec, *a, **k: model)
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ff.rows()))
    out = tmp_path / "ft"
    args = ["--data", str(data), "--metric", "exact_match:answer", "--out", str(out), "--model", "local"]
    code, stdout, err = _run(capsys, *args)
    assert code == 0, err
    assert "kept 2 of 3 rows" in err and "answer 2 lines" in err
    summary = json.loads(stdout)
    assert summary["files"]["answer"]["lines"] == 2 and (out / "topic.jsonl").is_file()


def _store(path: Path) -> None:
    store = RunStore(path)
    traces = [
        {"node": "topic", "kind": "micro_prompt", "inputs": {"question": "2+2?"}, "output": {"topic": "math"}},
        {
            "node": "answer",
            "kind": "micro_prompt",
            "inputs": {"question": "2+2?", "topic": "math"},
            "output": {"answer": "4"},
        },
    ]
    store.record(
        RunRecord(run_id="r1", flow="qa2", inputs={"question": "2+2?"}, outputs={"answer": "4"}, traces=traces)
    )
    store.record(RunRecord(run_id="r2", flow="qa2", inputs={"question": "3+3?"}, outputs={"answer": "6"}))
    store.add_feedback("r1", 1.0)
    store.close()


def test_from_a_run_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _store(tmp_path / "runs.sqlite")
    code, stdout, err = _run(capsys, "--store", str(tmp_path / "runs.sqlite"), "--out", str(tmp_path / "ft"))
    assert code == 0, err
    assert json.loads(stdout)["kept"] == 1
    line = json.loads((tmp_path / "ft" / "answer.jsonl").read_text())
    assert line["messages"][-1] == {"role": "assistant", "content": '{"answer": "4"}'}


def test_bad_stores_and_options_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "ft")
    code, _, err = _run(capsys, "--out", out)
    assert code == 2 and err.strip() == "error: give exactly one of --data FILE or --store RUNS.sqlite"
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"garbage" * 200)
    code, _, err = _run(capsys, "--store", str(corrupt), "--out", out)
    assert code == 2 and err.startswith("error: ") and "not a readable run store" in err and len(err.splitlines()) == 1
    RunStore(tmp_path / "empty.sqlite").close()
    code, _, err = _run(capsys, "--store", str(tmp_path / "empty.sqlite"), "--out", out)
    assert code == 2 and "holds no runs" in err
    store = RunStore(tmp_path / "nofeedback.sqlite")
    store.record(RunRecord(run_id="r", flow="qa2", inputs={"question": "2+2?"}))
    store.close()
    code, _, err = _run(capsys, "--store", str(tmp_path / "nofeedback.sqlite"), "--out", out)
    assert code == 2 and "no run with feedback" in err
    assert not Path(out).exists()
