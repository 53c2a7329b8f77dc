"""A corrupt or truncated call cache is one clear error that names the file and the way out, never a traceback."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

import microprompts.nodes.runtime as runtime
from microprompts.cli import main
from microprompts.models import CacheError, CallCache


def _truncated(path: Path) -> Path:
    conn = sqlite3.connect(str(path))
    conn.execute("CREATE TABLE calls (key TEXT PRIMARY KEY, reply TEXT NOT NULL)")
    conn.executemany("INSERT INTO calls VALUES (?, ?)", [(str(i), "x" * 1000) for i in range(2000)])
    conn.commit()
    conn.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize("make", ["random", "truncated"])
def test_a_corrupt_cache_names_its_file_and_the_way_out(tmp_path: Path, make: str) -> None:
    path = tmp_path / "calls.sqlite"
    if make == "random":
        path.write_bytes(os.urandom(4096))
        with pytest.raises(CacheError, match="move it aside"):
            CallCache(path)
        return
    with pytest.raises(CacheError, match=str(path)):
        CallCache(_truncated(path)).get("1999")  # on opening, or at the latest on reading


def test_the_cli_says_it_in_one_line_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "calls.sqlite"
    bad.write_bytes(os.urandom(4096))
    monkeypatch.setenv("MICROPROMPTS_CACHE", str(bad))
    monkeypatch.setattr(runtime, "_DEFAULT", None)
    data = tmp_path / "rows.jsonl"
    data.write_text(
        json.dumps(
            {
                "inputs": {"preferences": "aisle", "available_seats": ["economy_1C_aisle"]},
                "output": {"recommended_seats": ["economy_1C_aisle"]},
            }
        )
        + "\n"
    )
    code = main(
        [
            "evaluate",
            "examples/seats/flow.py:flow",
            "--data",
            str(data),
            "--metric",
            "jaccard:recommended_seats",
            "--json",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and str(bad) in err and "move it aside" in err
