"""The model-free half of synthesis: duplicates by rapidfuzz, the report line, atomic rows and seeded splits."""

from __future__ import annotations

from pathlib import Path

import pytest

from microprompts.data import Dataset, Row
from microprompts.data.synthesize import Deduper, SynthesisReport, split_paths, write_rows, write_splits


def test_exact_and_near_duplicates() -> None:
    seen = Deduper(threshold=90, seen=[{"q": "What is the capital of France?"}])
    assert seen.verdict({"q": "what is  the capital of france?"}) == "duplicate"
    assert seen.verdict({"q": "What is the capital of France ?!"}) == "near-duplicate"
    assert seen.verdict({"q": "Who wrote Hamlet?"}) is None
    seen.add({"q": "Who wrote Hamlet?"})
    assert seen.verdict({"q": "Who wrote Hamlet?"}) == "duplicate"
    with pytest.raises(ValueError, match="threshold"):
        Deduper(threshold=0)


def test_report_line_counts_reasons() -> None:
    report = SynthesisReport(generated=5, kept=2)
    for reason in ("schema", "schema", "judge"):
        report.reject(reason, "x" * 1000)
    assert report.line().startswith("synthesized: generated 5, rejected 3 (judge 1, schema 2), kept 2")
    assert len(report.examples["schema"][0]) == 300


def test_rows_and_seeded_splits(tmp_path: Path) -> None:
    rows = [Row(inputs={"q": f"question {i}"}, output={"a": str(i)}, id=f"r{i}") for i in range(10)]
    out = tmp_path / "deep" / "rows.jsonl"
    write_rows(rows, out)
    assert list(Dataset.load(out)) == rows
    first = write_splits(rows, out, seed=3)
    texts = {label: p.read_text() for label, p in split_paths(out).items()}
    assert first == {"train": 6, "dev": 2, "test": 2}
    write_splits(rows, out, seed=3)
    assert texts == {label: p.read_text() for label, p in split_paths(out).items()}
    write_splits(rows, out, seed=4)
    assert texts != {label: p.read_text() for label, p in split_paths(out).items()}
    with pytest.raises(ValueError, match="no rows"):
        write_splits([], out)
