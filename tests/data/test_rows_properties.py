"""Property-based tests on dataset rows: `Dataset.from_rows` on arbitrary values gives Rows or a DatasetError
with a clear one-line message, never another exception (500 examples each)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microprompts.data import Dataset, DatasetError, Row

PROPERTY = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
field_names = st.sampled_from(
    [
        "inputs",
        "output",
        "outputs",
        "input",
        "target",
        "id",
        "inputs.q",
        "output.a",
        "inputs.",
        "output.",
        "q",
        "a",
        ".x",
    ]
) | st.text(max_size=10)
raw_rows = st.dictionaries(field_names, values, max_size=5)
odd_keys = st.dictionaries(st.integers() | st.none() | st.text(max_size=5), values, max_size=3)
rows = st.lists(raw_rows | odd_keys | values, max_size=5)
maps = st.none() | st.dictionaries(
    field_names,
    st.sampled_from(["inputs.q", "output.a", "id", "inputs", "output.", "x.y", ""]) | st.text(max_size=10),
    max_size=3,
)


def _only_rows_or_dataset_error(call: Any) -> Dataset | None:
    try:
        result = call()
    except DatasetError as exc:
        message = str(exc)
        assert message and "\n" not in message and "Traceback" not in message
        return None
    assert isinstance(result, Dataset)
    for row in result:
        assert isinstance(row, Row) and isinstance(row.inputs, dict) and row.inputs
        assert isinstance(row.output, dict) and (row.id is None or isinstance(row.id, str))
    return result


@settings(PROPERTY)
@given(rows=rows, field_map=maps)
def test_from_rows_gives_rows_or_a_dataset_error(rows, field_map):
    _only_rows_or_dataset_error(lambda: Dataset.from_rows(rows, map=field_map))


@settings(PROPERTY)
@given(
    inputs=st.dictionaries(st.text(min_size=1, max_size=8), values, min_size=1, max_size=4),
    output=values,
    row_id=scalars,
)
def test_well_formed_rows_always_load(inputs, output, row_id):
    dataset = _only_rows_or_dataset_error(
        lambda: Dataset.from_rows([{"inputs": inputs, "output": output, "id": row_id}])
    )
    assert dataset is not None
    row = dataset[0]
    assert row.inputs == inputs or row.inputs.keys() == inputs.keys()  # NaN != NaN, keys still match
    assert set(row.output) == (set(output) if isinstance(output, dict) else {"output"})
    assert row.id == (None if row_id is None else str(row_id))
