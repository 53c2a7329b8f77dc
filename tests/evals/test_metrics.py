"""Tests for the built-in metrics, metric-spec resolution and score normalization (no model calls)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from microprompts.data import Dataset, Row
from microprompts.evals.metrics import (
    MetricError,
    Score,
    as_score,
    exact_match,
    f1,
    jaccard,
    normalize,
    resolve_metric,
)
from microprompts.evals.score import MetricError as FlowsMetricError
from microprompts.evals.score import Score as FlowsScore

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def row(output: dict, **inputs: object) -> Row:
    return Row(inputs=inputs or {"input": "x"}, output=output, id="r1")


def test_score_is_shared_with_flows() -> None:
    assert Score is FlowsScore and MetricError is FlowsMetricError
    assert issubclass(MetricError, ValueError)
    assert Score(value=0.5).feedback == ""


# ----------------------------------------------------------------------------------------------- normalize
@pytest.mark.parametrize(
    ("text", "mode", "expected"),
    [
        ("  Hello   World. ", "none", "  Hello   World. "),
        ("  Hello   World. ", "basic", "hello world"),
        ('"Yes!"', "basic", "yes"),
        ("'(A)'", "basic", "(a)"),
        ("-5", "basic", "-5"),
        ("Copyright Flange\n half", "sammo", "copyrightflangehalf"),
        (True, "basic", "true"),
        (42, "none", "42"),
        (["a", "b"], "none", '["a", "b"]'),
    ],
)
def test_normalize(text: object, mode: str, expected: str) -> None:
    assert normalize(text, mode) == expected


def test_normalize_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="unknown normalize mode 'loud'"):
        normalize("x", "loud")


# --------------------------------------------------------------------------------------------- exact_match
def test_exact_match_hit_and_miss() -> None:
    metric = exact_match()
    assert metric(row({"output": "No"}), {"output": " no."}) == Score(value=1.0, feedback="")
    miss = metric(row({"output": "No"}), {"output": "Yes"})
    assert miss.value == 0.0 and miss.feedback == "expected 'No', got 'Yes'"
    assert metric.__name__ == "exact_match(output)"
    assert metric({"input": "q", "target": "No"}, {"output": "no"}).value == 1.0  # type: ignore[arg-type]


def test_exact_match_fields_and_modes() -> None:
    metric = exact_match("label", expected_field="gold", normalize="sammo")
    assert metric(row({"gold": "copyright flange"}), {"label": "Copyright  Flange"}).value == 1.0
    strict = exact_match("label", normalize="none")
    assert strict(row({"label": "A"}), {"label": "a"}).value == 0.0
    with pytest.raises(ValueError, match="unknown normalize mode"):
        exact_match(normalize="fuzzy")


def test_exact_match_any_of_outputs() -> None:
    example = Dataset.from_rows([{"input": "0 4", "outputs": ["4", "four"]}])[0]
    metric = exact_match()
    assert metric(example, {"output": "Four"}).value == 1.0
    miss = metric(example, {"output": "5"})
    assert miss.value == 0.0 and miss.feedback == "expected one of '4', 'four', got '5'"


def test_exact_match_missing_fields_and_truncation() -> None:
    metric = exact_match("answer")
    assert metric(row({"answer": "a"}), {"other": 1}) == Score(value=0.0, feedback="prediction has no field 'answer'")
    assert metric(row({"answer": "a"}), None).value == 0.0  # type: ignore[arg-type]
    with pytest.raises(MetricError, match="no expected field 'answer'"):
        metric(row({"output": "a"}), {"answer": "a"})
    long = metric(row({"answer": "a"}), {"answer": "z" * 1000})
    assert len(long.feedback) < 300 and "..." in long.feedback


# ------------------------------------------------------------------------------------------------- jaccard
SEATS = ["1A", "1B", "2A", "2B", "3C"]


def test_jaccard_perfect_partial_and_invented() -> None:
    metric = jaccard("seats", valid_from="available")
    example = row({"seats": ["1A", "2A"]}, available=SEATS)
    assert metric(example, {"seats": ["2a", "1A"]}) == Score(value=1.0, feedback="")
    partial = metric(example, {"seats": ["1A", "3C"]})
    assert partial.value == pytest.approx(1 / 3)
    assert "missing: 2a" in partial.feedback and "extra: 3c" in partial.feedback
    invented = metric(example, {"seats": ["1A", "9Z"]})
    assert invented.value == pytest.approx(1 / 3 - 0.25)
    assert "invalid (not in available): 9z" in invented.feedback
    assert metric(example, {"seats": ["7X", "8Y", "9Z"]}).value == 0.0


def test_jaccard_k_penalty_strings_and_empties() -> None:
    metric = jaccard("seats", k=2, penalty=0.1)
    example = row({"seats": "1A, 2A"})
    over = metric(example, {"seats": "1A,2A\n3C"})
    assert over.value == pytest.approx(2 / 3 - 0.1) and "1 item(s) beyond the first 2" in over.feedback
    assert jaccard("s")(row({"s": []}), {"s": []}).value == 1.0
    assert jaccard("s")(row({"s": ["a"]}), {"s": None}).value == 0.0
    assert jaccard("s")(row({"s": ["a"]}), {}).feedback == "prediction has no field 's'"


def test_jaccard_feedback_is_bounded() -> None:
    metric = jaccard("s")
    result = metric(row({"s": ["a"]}), {"s": [f"x{i}" for i in range(100)]})
    assert "(+90 more)" in result.feedback and len(result.feedback) < 300


def test_jaccard_errors() -> None:
    with pytest.raises(MetricError, match="no input 'available'"):
        jaccard("s", valid_from="available")(row({"s": ["a"]}), {"s": ["a"]})
    with pytest.raises(MetricError, match="no expected field 's'"):
        jaccard("s")(row({"t": ["a"]}), {"s": ["a"]})
    with pytest.raises(ValueError, match="penalty"):
        jaccard("s", penalty=-1)
    with pytest.raises(ValueError, match="k must be"):
        jaccard("s", k=0)


# ------------------------------------------------------------------------------------------------------ f1
def test_f1() -> None:
    metric = f1("answer")
    assert metric(row({"answer": "The Eiffel Tower"}), {"answer": "eiffel tower!"}).value == 1.0
    half = metric(row({"answer": "Eiffel Tower"}), {"answer": "Tower of London"})
    assert half.value == pytest.approx(0.4) and "expected 'Eiffel Tower'" in half.feedback
    assert metric(row({"answer": "x"}), {"answer": "y"}).value == 0.0
    assert metric(row({"answer": "the"}), {"answer": "a"}).value == 1.0
    best = f1()(Dataset.from_rows([{"input": "q", "outputs": ["red car", "crimson"]}])[0], {"output": "crimson"})
    assert best.value == 1.0
    assert f1("answer", expected_field="gold")(row({"gold": "x"}), {"answer": "x"}).value == 1.0


# ------------------------------------------------------------------------------------------------ as_score
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.5, Score(value=0.5)),
        (1, Score(value=1.0)),
        (True, Score(value=1.0)),
        (False, Score(value=0.0)),
        (Score(value=0.2, feedback="meh"), Score(value=0.2, feedback="meh")),
        ({"value": 0.7, "feedback": "ok"}, Score(value=0.7, feedback="ok")),
        ({"value": 1}, Score(value=1.0)),
    ],
)
def test_as_score_accepts(value: object, expected: Score) -> None:
    assert as_score(value) == expected


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (None, "NoneType"),
        ("0.5", "str"),
        ([1.0], "list"),
        (math.nan, "not finite"),
        (math.inf, "not finite"),
        (Score(value=math.nan), "not finite"),
        ({"value": "high"}, "'value' is a str"),
        ({"value": True}, "'value' is a bool"),
        ({"value": 1.0, "feedback": 3}, "'feedback' is a int"),
        ({"score": 1.0}, "dict"),
    ],
)
def test_as_score_rejects(value: object, match: str) -> None:
    with pytest.raises(MetricError, match=match) as info:
        as_score(value)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------------------------ resolve_metric
def test_resolve_builtins() -> None:
    example = row({"output": "Copyright Flange", "seats": ["1A"], "answer": "red car"}, available=["1A"])
    assert resolve_metric("exact_match")(example, {"output": "copyright flange"}).value == 1.0
    assert resolve_metric("exact_match:output:none")(example, {"output": "copyright flange"}).value == 0.0
    assert resolve_metric("exact_match:output:sammo")(example, {"output": "CopyrightFlange"}).value == 1.0
    assert resolve_metric("jaccard:seats:available")(example, {"seats": ["1A", "2B"]}).value == pytest.approx(0.25)
    assert resolve_metric("jaccard:seats")(example, {"seats": ["1A", "2B"]}).value == pytest.approx(0.5)
    assert resolve_metric("f1:answer")(example, {"answer": "red"}).value == pytest.approx(2 / 3)
    assert resolve_metric("f1")(example, {"output": "copyright"}).value == pytest.approx(2 / 3)


def test_resolve_file_and_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = "def length_ok(example, prediction):\n    return len(prediction['output']) < 5\n"
    (tmp_path / "my_metric.py").write_text(source)
    from_file = resolve_metric(f"{tmp_path / 'my_metric.py'}:length_ok")
    assert from_file(row({}), {"output": "abc"}) is True
    monkeypatch.syspath_prepend(str(tmp_path))
    from_module = resolve_metric("my_metric:length_ok")
    assert from_module(row({}), {"output": "abcdef"}) is False
    assert resolve_metric("microprompts.evals.metrics:normalize") is normalize


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("accuracy", "unknown metric 'accuracy'"),
        ("exact_match:a:b:c", "unknown metric"),
        ("exact_match:a:loud", "normalize mode"),
        ("jaccard", "unknown metric 'jaccard'"),
        ("f1:a:b", "unknown metric"),
        ("exact_match::sammo", "empty part"),
        ("missing/file.py:func", "no such file"),
        ("no_such_module_xyz:func", "cannot import"),
        ("microprompts.evals.metrics:nope", "no attribute 'nope'"),
        ("microprompts.evals.metrics:_MODES", "not callable"),
    ],
)
def test_resolve_errors(spec: str, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        resolve_metric(spec)
    assert "\n" not in str(info.value)


def test_resolve_broken_file(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(ValueError, match="importing .* failed: RuntimeError: boom"):
        resolve_metric(f"{tmp_path / 'broken.py'}:func")


def test_sammo_scoring_on_shared_data() -> None:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent")
    ds = Dataset.load(SHARED_DATA / "sammo_instruction_tuning" / "word_sorting.json")
    metric = resolve_metric("exact_match:output:sammo")
    assert all(metric(r, {"output": r.output["output"].upper()}).value == 1.0 for r in ds.test)
