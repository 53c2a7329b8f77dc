"""Tests for microprompts.data.dataset: loading, normalization, field maps, splits and every error path."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from pydantic import ValidationError

from microprompts.data import Dataset, DatasetError, Row, parse_map

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def shared(*parts: str) -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent")
    return SHARED_DATA.joinpath(*parts)


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------ normalization
def test_row_is_frozen() -> None:
    row = Row(inputs={"a": 1})
    assert row.output == {} and row.id is None
    with pytest.raises(ValidationError):
        row.inputs = {}  # type: ignore[misc]


@pytest.mark.parametrize(
    ("raw", "inputs", "output", "row_id"),
    [
        ({"inputs": {"q": "x"}, "output": {"a": "y"}}, {"q": "x"}, {"a": "y"}, None),
        ({"inputs": {"q": "x"}, "output": "y"}, {"q": "x"}, {"output": "y"}, None),
        ({"inputs": {"q": "x"}}, {"q": "x"}, {}, None),
        ({"input": "x", "output": "y"}, {"input": "x"}, {"output": "y"}, None),
        ({"id": "b-1", "input": "x", "target": "No"}, {"input": "x"}, {"output": "No"}, "b-1"),
        (
            {"id": 7, "input": "0 4", "outputs": ["4", "four"]},
            {"input": "0 4"},
            {"output": "4", "outputs": ["4", "four"]},
            "7",
        ),
        ({"input": "x", "outputs": "4"}, {"input": "x"}, {"output": "4", "outputs": ["4"]}, None),
        ({"input": "x", "extra": 3, "output": "y"}, {"input": "x", "extra": 3}, {"output": "y"}, None),
        ({"question": "q", "answer": "a"}, {"question": "q", "answer": "a"}, {}, None),
        ({"inputs.q": "x", "output.a": "y"}, {"q": "x"}, {"a": "y"}, None),
        ({"input": "x", "output": "y", "target": "z"}, {"input": "x"}, {"output": "y", "target": "z"}, None),
    ],
)
def test_normalization(raw: dict, inputs: dict, output: dict, row_id: str | None) -> None:
    row = Dataset.from_rows([raw])[0]
    assert (row.inputs, row.output, row.id) == (inputs, output, row_id)


def test_from_rows_accepts_rows_and_dicts() -> None:
    ds = Dataset.from_rows([Row(inputs={"a": 1}), {"input": "b"}], name="mixed")
    assert len(ds) == 2 and ds.name == "mixed"
    assert [r.inputs for r in ds] == [{"a": 1}, {"input": "b"}]


def test_map_moves_fields_and_wins_over_defaults() -> None:
    field_map = {"target": "output.answer", "question": "inputs.q", "id": "inputs.ident"}
    row = Dataset.from_rows([{"id": 1, "question": "why", "target": "because", "other": 2}], map=field_map)[0]
    assert row.inputs == {"q": "why", "ident": 1, "other": 2}
    assert row.output == {"answer": "because"}
    assert row.id is None


def test_map_to_id() -> None:
    row = Dataset.from_rows([{"key": "k1", "input": "x"}], map={"key": "id"})[0]
    assert row.id == "k1" and row.inputs == {"input": "x"}


def test_parse_map() -> None:
    assert parse_map(["target=output.answer", " question = inputs.question", "k=id"]) == {
        "target": "output.answer",
        "question": "inputs.question",
        "k": "id",
    }
    assert parse_map([]) == {}


@pytest.mark.parametrize("item", ["target", "=output.a", "target=", "target=answer", "a=inputs.", "a=outs.x"])
def test_parse_map_rejects_bad_items(item: str) -> None:
    with pytest.raises(DatasetError, match="--map") as info:
        parse_map([item])
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------------------------- loading
def test_load_jsonl_with_blank_lines_and_limit(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"input": "a", "output": "1"}\n\n{"input": "b", "output": "2"}\n{"input": "c"}\n')
    ds = Dataset.load(path)
    assert len(ds) == 3 and ds.name == "d"
    assert [r.output for r in ds] == [{"output": "1"}, {"output": "2"}, {}]
    assert len(Dataset.load(path, limit=2)) == 2


def test_load_json_list(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"inputs": {"x": 1}, "output": {"y": 2}}, {"inputs": {"x": 3}}]))
    ds = Dataset.load(path, limit=1)
    assert [r.inputs for r in ds] == [{"x": 1}]


def test_load_csv(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("question,answer,inputs.ctx\nwhat,that,c1\nwho,me,c2\n")
    ds = Dataset.load(path, map={"answer": "output.answer"})
    assert ds[1].inputs == {"question": "who", "ctx": "c2"}
    assert ds[1].output == {"answer": "me"}


def test_load_sammo_format(tmp_path: Path) -> None:
    def rows(n: int, tag: str) -> list[dict]:
        return [{"input": f"{tag}{i}", "output": "yes"} for i in range(n)]

    data = {
        "task_id": "t",
        "instructions": "Do it.",
        "d_incontext": rows(2, "c"),
        "d_train": rows(4, "a"),
        "d_val": rows(2, "v"),
        "d_test": rows(3, "e"),
    }
    path = tmp_path / "t.json"
    path.write_text(json.dumps(data))
    ds = Dataset.load(path)
    assert (len(ds), len(ds.train), len(ds.dev), len(ds.test), len(ds.incontext)) == (9, 4, 2, 3, 2)
    assert ds.instructions == "Do it."
    assert ds.train[0].id == "t-train-0" and ds.test[2].inputs == {"input": "e2"}
    limited = Dataset.load(path, limit=1)
    assert (len(limited), len(limited.train), len(limited.incontext)) == (3, 1, 1)


# -------------------------------------------------------------------------------------------- error paths
def one_line_error(path: Path, **kwargs: object) -> str:
    with pytest.raises(DatasetError) as info:
        Dataset.load(path, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_error_missing_file(tmp_path: Path) -> None:
    assert "cannot read file" in one_line_error(tmp_path / "nope.jsonl")


def test_error_undecodable_file(tmp_path: Path) -> None:
    path = tmp_path / "bin.jsonl"
    path.write_bytes(b"\xff\xfe\xfa\x00garbage")
    assert "cannot read file" in one_line_error(path)


def test_error_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    path.write_text("x")
    assert "unknown file type '.txt'" in one_line_error(path)


def test_error_invalid_json_line(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"input": "a"}\n{"input": \n')
    assert "line 2: invalid JSON" in one_line_error(path)


def test_error_invalid_json_file(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text('[{"input": "a"},\n oops]')
    assert "line 2: invalid JSON" in one_line_error(path)


def test_error_json_not_a_list(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text('{"rows": []}')
    assert "expected a JSON list of rows or a SAMMO split file, got dict" in one_line_error(path)


def test_error_row_not_an_object(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"input": "a"}, {"input": "b"}, ["x"]])
    assert "line 3: row is not an object (got list)" in one_line_error(path)


def test_error_row_without_inputs(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"output": "a"}])
    assert "line 1: row has no inputs" in one_line_error(path)
    path = write_jsonl(tmp_path / "e.jsonl", [{"inputs": {}, "output": "a"}])
    assert "line 1: row has no inputs" in one_line_error(path)


def test_error_non_dict_inputs(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"inputs": {"a": 1}}, {"inputs": "text"}]))
    assert "row 2: 'inputs' must be an object, got str" in one_line_error(path)


def test_error_empty_outputs(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"input": "a", "outputs": []}])
    assert "'outputs' is an empty list" in one_line_error(path)


def test_error_empty_datasets(tmp_path: Path) -> None:
    for name, text in [("a.jsonl", "\n\n"), ("b.json", "[]"), ("c.csv", "question,answer\n"), ("d.csv", "")]:
        path = tmp_path / name
        path.write_text(text)
        assert "no rows" in one_line_error(path)
    with pytest.raises(DatasetError, match="rows: no rows"):
        Dataset.from_rows([])


def test_error_csv_row_too_long(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,2\n1,2,3\n")
    assert "line 3: row has more cells than the header" in one_line_error(path)


def test_error_map_field_missing_and_bad_destination(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "q", "answer": "a"}, {"question": "q"}])
    assert "line 2: row has no field 'answer' named in the map" in one_line_error(path, map={"answer": "output.answer"})
    assert "bad map destination 'answer'" in one_line_error(path, map={"answer": "answer"})


def test_error_field_given_twice() -> None:
    with pytest.raises(DatasetError, match="row 1: field 'inputs.q' is given twice"):
        Dataset.from_rows([{"question": "a", "q": "b"}], map={"question": "inputs.q"})


def test_error_bad_limit(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"input": "a"}])
    assert "limit must be at least 1" in one_line_error(path, limit=0)


def test_error_sammo_split_not_a_list(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(
        json.dumps({"task_id": "t", "instructions": "", "d_incontext": [], "d_train": {}, "d_val": [], "d_test": []})
    )
    assert "'d_train' must be a list, got dict" in one_line_error(path)
    path.write_text(
        json.dumps({"task_id": "t", "instructions": "", "d_incontext": [], "d_train": [3], "d_val": [], "d_test": []})
    )
    assert "d_train row 1: row is not an object" in one_line_error(path)


# ----------------------------------------------------------------------------------- split, sample, access
def numbered(n: int) -> Dataset:
    return Dataset.from_rows([{"input": str(i), "id": i} for i in range(n)], name="nums")


def ids(ds: Dataset | None) -> list[str]:
    assert ds is not None
    return [r.id or "" for r in ds]


def test_split_fractions_are_seeded_and_partition_rows() -> None:
    ds = numbered(20)
    first, again, other = ds.split(seed=1), ds.split(seed=1), ds.split(seed=2)
    assert (len(first.train), len(first.dev), len(first.test)) == (10, 5, 5)
    assert ids(first.train) == ids(again.train) and ids(first.train) != ids(other.train)
    assert sorted(ids(first.train) + ids(first.dev) + ids(first.test), key=int) == ids(ds)
    assert first is not ds and ds.train is None and len(first) == 20 and first.name == "nums"


def test_split_counts_mixed_and_empty_parts() -> None:
    ds = numbered(10)
    counted = ds.split(train=3, dev=2, test=1)
    assert (len(counted.train), len(counted.dev), len(counted.test)) == (3, 2, 1)
    mixed = ds.split(train=2, dev=0.5, test=0.5)
    assert (len(mixed.train), len(mixed.dev), len(mixed.test)) == (2, 4, 4)
    partial = ds.split(train=0.8, dev=0.2, test=0)
    assert (len(partial.train), len(partial.dev), partial.test) == (8, 2, None)


@pytest.mark.parametrize(
    "sizes", [{"train": 0.8, "dev": 0.3}, {"train": 11}, {"train": -1}, {"train": True}, {"train": "0.5"}]
)
def test_split_rejects_bad_sizes(sizes: dict) -> None:
    with pytest.raises(ValueError):
        numbered(10).split(**sizes)


def test_sample_and_access() -> None:
    ds = numbered(10)
    assert ids(ds.sample(3, seed=4)) == ids(ds.sample(3, seed=4))
    assert len(ds.sample(3)) == 3 and len(ds.sample(50)) == 10
    with pytest.raises(ValueError):
        ds.sample(-1)
    assert ds[0].id == "0" and ds[-1].id == "9"
    assert isinstance(ds[2:5], Dataset) and ids(ds[2:5]) == ["2", "3", "4"]
    assert "rows=10" in repr(ds) and "train=5" in repr(ds.split())


# ----------------------------------------------------------------------------------------- shared data
def test_load_all_bbh() -> None:
    files = sorted(shared("bbh").glob("*.jsonl"))
    assert len(files) == 27
    for path in files:
        ds = Dataset.load(path)
        assert len(ds) > 0 and "input" in ds[0].inputs and "output" in ds[0].output and ds[0].id


def test_load_all_sammo_instruction_tuning() -> None:
    files = sorted(shared("sammo_instruction_tuning").glob("*.json"))
    assert len(files) == 8
    for path in files:
        ds = Dataset.load(path)
        assert (len(ds.train), len(ds.dev), len(ds.test), len(ds.incontext)) == (100, 50, 100, 5)
        assert len(ds) == 250 and ds.instructions


def test_load_all_instruction_induction() -> None:
    files = sorted(shared("instruction_induction").glob("*.jsonl"))
    assert len(files) == 48
    for path in files:
        row = Dataset.load(path, limit=5)[0]
        assert row.output["output"] == row.output["outputs"][0]


def test_load_gsm8k_and_hotpotqa() -> None:
    gsm_map = {"answer": "output.answer", "solution": "output.solution"}
    gsm = Dataset.load(shared("gsm8k", "test.jsonl"), map=gsm_map)
    assert len(gsm) == 1319 and gsm[0].output["answer"] == "18" and "####" in gsm[0].output["solution"]
    assert "question" in gsm[0].inputs and "solution" not in gsm[0].inputs
    assert len(Dataset.load(shared("gsm8k", "train_sample1000.jsonl"), map=gsm_map)) == 1000
    hotpot = Dataset.load(shared("hotpotqa", "aflow_validate200_distractor.jsonl"), map={"answer": "output.answer"})
    assert len(hotpot) == 200 and {"question", "context"} <= set(hotpot[0].inputs)
    assert hotpot[0].output == {"answer": "romance"} and hotpot[0].id


def labelled(yes: int, no: int) -> Dataset:
    rows = [{"input": str(i), "target": "yes" if i < yes else "no", "id": i} for i in range(yes + no)]
    return Dataset.from_rows(rows, name="labels")


def share(ds: Dataset | None, label: str = "yes") -> int:
    assert ds is not None
    return sum(r.output["output"] == label for r in ds)


def test_stratified_split_keeps_label_proportions_in_every_part() -> None:
    ds = labelled(yes=63, no=37)
    for seed in range(20):
        parts = ds.split(train=50, dev=20, test=30, seed=seed, stratify="output")
        assert sorted(ids(parts.train) + ids(parts.dev) + ids(parts.test), key=int) == ids(ds)
        assert abs(share(parts.dev) - 0.63 * 20) <= 1 and abs(share(parts.test) - 0.63 * 30) <= 1
    plain = [share(ds.split(train=50, dev=20, test=30, seed=s).dev) for s in range(20)]
    assert max(plain) - min(plain) > 2  # without it, dev's share of a label swings with the seed


def test_stratified_split_and_sample_are_seeded_and_leave_the_plain_ones_alone() -> None:
    ds = labelled(yes=10, no=30)
    first, again = ds.split(seed=3, stratify="output"), ds.split(seed=3, stratify="output")
    assert ids(first.dev) == ids(again.dev) and ids(first.dev) != ids(ds.split(seed=4, stratify="output").dev)
    order = list(ds.rows)
    random.Random(3).shuffle(order)  # without stratify, the seeded split and sample every earlier run made
    plain = ds.split(seed=3)
    assert (
        ids(plain.train) + ids(plain.dev) + ids(plain.test)
        == [r.id for r in order]
        != ids(first.train) + ids(first.dev) + ids(first.test)
    )
    assert [r.id for r in ds.sample(8, seed=3)] == [r.id for r in random.Random(3).sample(ds.rows, 8)]
    picked = ds.sample(8, seed=3, stratify="output")
    assert len(picked) == 8 and share(picked) == 2
    assert ids(picked) == ids(ds.sample(8, seed=3, stratify="output"))


def test_stratify_on_a_missing_field_names_it() -> None:
    with pytest.raises(ValueError, match="cannot stratify on output field 'label': row 0 has no such field"):
        labelled(2, 2).split(stratify="label")
