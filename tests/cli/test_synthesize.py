"""The `microprompts synthesize` command with a scripted generator patched in for `--model`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

import microprompts.cli.synthesize
from microprompts.cli import main
from microprompts.data import Dataset
from microprompts.testing import ScriptedChatModel

FLOW = "tests.cli._synth:qa"


def _generator(rows: list[Any]) -> ScriptedChatModel:
    def reply(messages: list[BaseMessage]) -> Any:
        if "Propose varied situations" in str(messages[0].content):
            return {"situations": ["easy", "hard"]}
        return {"rows": rows}

    return ScriptedChatModel(replies=reply)


def _patch(monkeypatch: pytest.MonkeyPatch, model: ScriptedChatModel) -> None:
    monkeypatch.setattr(microprompts.cli.synthesize, "resolve_model", lambda spec, *args, **kwargs: model)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["synthesize", FLOW, "--model", "local", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _row(i: int) -> dict[str, Any]:
    words = ["river", "mountain", "planet", "painter", "king", "ocean", "desert", "composer", "language", "bridge"]
    return {"inputs": {"question": f"Tell me about the {words[i]} number {i * 37}?"}, "output": {"answer": str(i)}}


def test_rows_are_written_with_a_report_line_and_seeded_splits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _patch(monkeypatch, _generator([_row(i) for i in range(10)] + [{"inputs": {"question": 3}}]))
    out = tmp_path / "syn.jsonl"
    code, stdout, err = _run(capsys, "--n", "10", "--out", str(out), "--per-request", "10", "--split")
    assert code == 0, err
    assert "generated 11, rejected 1 (schema 1), kept 10" in err
    rows = list(Dataset.load(out))
    assert len(rows) == 10 and all(isinstance(r.inputs["question"], str) for r in rows)
    summary = json.loads(stdout)
    assert summary["kept"] == 10 and summary["rejected"] == {"schema": 1}
    sizes = {label: part["rows"] for label, part in summary["splits"].items()}
    assert sizes == {"train": 6, "dev": 2, "test": 2}
    parts = [list(Dataset.load(tmp_path / f"syn.{label}.jsonl")) for label in ("train", "dev", "test")]
    assert sorted(r.id or "" for part in parts for r in part) == sorted(r.id or "" for r in rows)


def test_a_generator_whose_every_reply_fails_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _patch(monkeypatch, ScriptedChatModel(replies=["not json"], repeat_last=True))
    out = tmp_path / "syn.jsonl"
    code, stdout, err = _run(capsys, "--n", "3", "--out", str(out), "--budget-calls", "3")
    assert code == 1 and stdout == ""
    assert "error: no row was kept, nothing written" in err and "unparseable reply 3" in err
    assert not out.exists()


def test_bad_arguments_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "--n", "3", "--out", str(tmp_path / "rows.csv"))
    assert code == 2 and err.strip() == f"error: --out must be a .jsonl file, got '{tmp_path / 'rows.csv'}'"
    code, _, err = _run(capsys, "--n", "0", "--out", str(tmp_path / "rows.jsonl"))
    assert code == 2 and "--n" in err


def test_a_progress_bar_counts_the_rows_kept_unless_turned_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _patch(monkeypatch, _generator([_row(i) for i in range(4)]))
    code, _, err = _run(capsys, "--n", "4", "--out", str(tmp_path / "a.jsonl"), "--per-request", "4")
    assert code == 0, err
    assert "synthesize: 100%" in err and "4/4" in err and "generated=4" in err
    code, _, err = _run(capsys, "--n", "4", "--out", str(tmp_path / "b.jsonl"), "--per-request", "4", "--no-progress")
    assert code == 0, err
    assert "synthesize:" not in err and "kept 4" in err
