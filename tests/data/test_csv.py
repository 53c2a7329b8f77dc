"""CSV and JSONL files are read as what they are: quoted newlines and U+2028 stay inside their field, and a short
row is an error that names its line; any table of text cells survives a CSV round trip."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microprompts.data import Dataset, DatasetError


def test_a_quoted_newline_stays_in_its_field(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text('question,answer\n"line one\nline two",yes\n', encoding="utf-8")
    ds = Dataset.load(path, map={"answer": "output.answer"})
    assert len(ds) == 1 and ds[0].inputs == {"question": "line one\nline two"}


def test_u2028_inside_a_field_does_not_split_the_row(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("question,answer\nbefore\u2028after,yes\nsecond,no\n", encoding="utf-8")
    ds = Dataset.load(path, map={"answer": "output.answer"})
    assert [r.inputs["question"] for r in ds] == ["before\u2028after", "second"]


def test_u2028_inside_a_jsonl_value_does_not_split_the_row(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    row = {"inputs": {"q": "before\u2028after"}, "output": {"a": "yes"}}
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    assert Dataset.load(path)[0].inputs == {"q": "before\u2028after"}


def test_a_short_row_is_an_error_naming_its_line(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b,c\n1,2,3\n1,2\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="line 3: row has fewer cells than the header"):
        Dataset.load(path)


cells = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"), max_size=12)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(cells, cells), min_size=1, max_size=5))
def test_text_cells_survive_a_csv_round_trip(tmp_path: Path, table: list[tuple[str, str]]) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["question", "answer"])
    writer.writerows(table)
    path = tmp_path / "round.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    ds = Dataset.load(path, map={"answer": "output.answer"})
    assert [(r.inputs["question"], r.output["answer"]) for r in ds] == table
