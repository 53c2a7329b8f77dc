"""Built-in metrics and the resolver for metric specs given on the command line.

A metric is ``metric(example: Row, prediction: dict) -> float | Score``; higher is better, and the built-ins
score in [0, 1] with feedback that says what was wrong (the optimizer feeds it to its critique steps).
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from microprompts.data.dataset import Row
from microprompts.evals.judge import llm_judge
from microprompts.evals.score import Metric, MetricError, Score, as_score
from microprompts.nodes.function import RefError, load_object

__all__ = [
    "Metric",
    "MetricError",
    "Score",
    "as_score",
    "exact_match",
    "f1",
    "jaccard",
    "llm_judge",
    "normalize",
    "resolve_metric",
]

_MODES = ("none", "basic", "sammo")
_QUOTES = "\"'`“”‘’«»"
_TRAILING = ".,;:!?"
_PUNCTUATION = frozenset(string.punctuation)
_FEEDBACK_CHARS = 200
_FEEDBACK_ITEMS = 10
_FORMS = (
    "exact_match, exact_match:FIELD, exact_match:FIELD:none|basic|sammo, jaccard:FIELD[:VALID_FROM], "
    "f1:FIELD, llm_judge:RUBRIC_FILE[:MODEL_SPEC], path/file.py:func or package.module:func"
)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def normalize(text: Any, mode: str = "basic") -> str:
    """Normalize a value for comparison. ``none``: as text; ``basic``: strip, lower-case, collapse whitespace,
    drop surrounding quotes and trailing ``.,;:!?``; ``sammo``: lower-case with all whitespace removed."""
    value = _text(text)
    if mode == "none":
        return value
    if mode == "sammo":
        return "".join(value.lower().split())
    if mode == "basic":
        value = " ".join(value.lower().split())
        previous = None
        while previous != value:
            previous = value
            value = value.strip().strip(_QUOTES).rstrip(_TRAILING)
        return value
    raise ValueError(f"unknown normalize mode {mode!r}: expected one of {', '.join(_MODES)}")


_normalize = normalize  # exact_match's `normalize` argument shadows the function inside it


def _short(value: Any, limit: int = _FEEDBACK_CHARS) -> str:
    text = _text(value)
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _expected(example: Row, key: str) -> list[Any]:
    """The acceptable answers for ``key``: ``output[key]`` plus any ``outputs`` list (all accepted)."""
    answers: list[Any] = [example.output[key]] if key in example.output else []
    extra = example.output.get("outputs")
    if isinstance(extra, list):
        answers += [a for a in extra if a not in answers]
    if not answers:
        raise MetricError(
            f"example {example.id or ''} has no expected field {key!r} (output has {sorted(example.output)})"
        )
    return answers


def _missing(field: str, prediction: dict[str, Any]) -> Score | None:
    if not isinstance(prediction, dict) or field not in prediction:
        return Score(value=0.0, feedback=f"prediction has no field {field!r}")
    return None


def _describe_expected(answers: list[Any]) -> str:
    if len(answers) == 1:
        return _short(answers[0])
    shown = ", ".join(_short(a, 60) for a in answers[:3])
    more = f" (+{len(answers) - 3} more)" if len(answers) > 3 else ""
    return f"one of {shown}{more}"


def exact_match(field: str = "output", normalize: str = "basic", expected_field: str | None = None) -> Metric:
    """Score 1 when ``prediction[field]`` equals the expected answer (or any of ``outputs``) after
    normalization, else 0 with feedback ``expected 'x', got 'y'``."""
    mode = normalize
    if mode not in _MODES:
        raise ValueError(f"unknown normalize mode {mode!r}: expected one of {', '.join(_MODES)}")
    key = expected_field or field

    def metric(example: Row, prediction: dict[str, Any]) -> Score:
        example = Row.of(example)
        missing = _missing(field, prediction)
        if missing:
            return missing
        answers = _expected(example, key)
        got = prediction[field]
        target = _normalize(got, mode)
        if any(_normalize(a, mode) == target for a in answers):
            return Score(value=1.0)
        return Score(value=0.0, feedback=f"expected {_describe_expected(answers)}, got {_short(got)}")

    metric.__name__ = metric.__qualname__ = f"exact_match({field})"
    metric.__dict__["expected_fields"] = (key,)  # what `check_rows` makes sure every row has
    return metric


def _items(value: Any) -> list[str]:
    """A value as distinct normalized items: a list as it is, a string split on commas, semicolons, lines."""
    if value is None:
        return []
    if isinstance(value, (list, tuple, set, frozenset)):
        raw = list(value)
    else:
        raw = re.split(r"[,;\n]", _text(value))
    items = [normalize(item) for item in raw]
    return list(dict.fromkeys(item for item in items if item))


def _listing(label: str, items: list[str]) -> str:
    shown = ", ".join(items[:_FEEDBACK_ITEMS])
    more = f" (+{len(items) - _FEEDBACK_ITEMS} more)" if len(items) > _FEEDBACK_ITEMS else ""
    return f"{label}: {shown}{more}"


def jaccard(
    field: str,
    valid_from: str | None = None,
    penalty: float = 0.25,
    k: int | None = None,
    expected_field: str | None = None,
) -> Metric:
    """The seed talk's set loss: Jaccard similarity of predicted and expected items, minus ``penalty``
    per predicted item not in ``example.inputs[valid_from]`` (invented) and per item beyond ``k``; floor 0."""
    if penalty < 0:
        raise ValueError(f"penalty must be non-negative, got {penalty}")
    if k is not None and k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    key = expected_field or field

    def metric(example: Row, prediction: dict[str, Any]) -> Score:
        example = Row.of(example)
        missing = _missing(field, prediction)
        if missing:
            return missing
        if key not in example.output:
            raise MetricError(f"example {example.id or ''} has no expected field {key!r}")
        predicted, expected = _items(prediction[field]), _items(example.output[key])
        p_set, e_set = set(predicted), set(expected)
        union = p_set | e_set
        similarity = len(p_set & e_set) / len(union) if union else 1.0
        invalid: list[str] = []
        if valid_from is not None:
            if valid_from not in example.inputs:
                raise MetricError(f"example {example.id or ''} has no input {valid_from!r} to check items against")
            valid = set(_items(example.inputs[valid_from]))
            invalid = [item for item in predicted if item not in valid]
        beyond = max(0, len(predicted) - k) if k is not None else 0
        value = max(0.0, similarity - penalty * (len(invalid) + beyond))
        notes = []
        if missing_items := [item for item in expected if item not in p_set]:
            notes.append(_listing("missing", missing_items))
        if extra := [item for item in predicted if item not in e_set]:
            notes.append(_listing("extra", extra))
        if invalid:
            notes.append(_listing(f"invalid (not in {valid_from})", invalid))
        if beyond:
            notes.append(f"{beyond} item(s) beyond the first {k}")
        return Score(value=value, feedback="; ".join(notes))

    metric.__name__ = metric.__qualname__ = f"jaccard({field})"
    metric.__dict__["expected_fields"] = (key,)  # what `check_rows` makes sure every row has
    return metric


def _squad_tokens(value: Any) -> list[str]:
    text = _text(value).lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return text.split()


def _token_f1(predicted: Any, expected: Any) -> float:
    p_tokens, e_tokens = _squad_tokens(predicted), _squad_tokens(expected)
    if not p_tokens or not e_tokens:
        return float(p_tokens == e_tokens)
    common = sum((Counter(p_tokens) & Counter(e_tokens)).values())
    if not common:
        return 0.0
    precision, recall = common / len(p_tokens), common / len(e_tokens)
    return 2 * precision * recall / (precision + recall)


def f1(field: str = "output", expected_field: str | None = None) -> Metric:
    """Token-level F1 between ``prediction[field]`` and the expected answer (SQuAD normalization: lower-case,
    no punctuation or articles); the best over ``outputs`` when the example lists several answers."""
    key = expected_field or field

    def metric(example: Row, prediction: dict[str, Any]) -> Score:
        example = Row.of(example)
        missing = _missing(field, prediction)
        if missing:
            return missing
        answers = _expected(example, key)
        got = prediction[field]
        value = max(_token_f1(got, answer) for answer in answers)
        feedback = "" if value == 1.0 else f"expected {_describe_expected(answers)}, got {_short(got)}"
        return Score(value=value, feedback=feedback)

    metric.__name__ = metric.__qualname__ = f"f1({field})"
    metric.__dict__["expected_fields"] = (key,)  # what `check_rows` makes sure every row has
    return metric


def _import_metric(spec: str, target: str, attr: str) -> Callable[..., Any]:
    try:
        func = load_object(f"{target}:{attr}")
    except RefError as exc:
        raise ValueError(f"metric {spec!r}: {exc}") from exc
    except Exception as exc:  # the user's module failed while importing
        raise ValueError(f"metric {spec!r}: importing {target!r} failed: {type(exc).__name__}: {exc}") from exc
    if not callable(func):
        raise ValueError(f"metric {spec!r}: {attr!r} in {target!r} is not callable")
    return func


def _judge_from_spec(spec: str, rest: str) -> Callable[..., Any]:
    """``llm_judge:RUBRIC_FILE[:MODEL_SPEC]``: the rubric is read from a text file; the model spec (which may hold
    colons itself, as in ``openai:NAME@URL``) is what follows the file, ``local`` when nothing does. The file is the
    longest prefix that names an existing file, so a path with a colon (``C:\\rubric.txt``) works too."""
    cuts = [i for i, ch in enumerate(rest) if ch == ":"] + [len(rest)]
    found = [i for i in cuts if Path(rest[:i]).is_file()]
    path, model = (rest[: found[-1]], rest[found[-1] + 1 :]) if found else rest.partition(":")[::2]
    try:
        rubric = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"metric {spec!r}: cannot read the rubric file {path!r}: {exc}") from exc
    return llm_judge(rubric, model or "local")


def resolve_metric(spec: str) -> Callable[..., Any]:
    """Turn a metric spec (``exact_match[:FIELD[:MODE]]``, ``jaccard:FIELD[:VALID_FROM]``, ``f1[:FIELD]``,
    ``llm_judge:RUBRIC_FILE[:MODEL_SPEC]``, ``path/file.py:func``, ``package.module:func``) into a metric."""
    spec = spec.strip()
    if spec.startswith("llm_judge:") and len(spec) > len("llm_judge:"):
        return _judge_from_spec(spec, spec[len("llm_judge:") :])
    name, _, rest = spec.partition(":")
    args = rest.split(":") if rest else []
    if any(not arg for arg in args):
        raise ValueError(f"bad metric {spec!r} (empty part): expected one of {_FORMS}")
    if name == "exact_match" and len(args) <= 2:
        if len(args) == 2 and args[1] not in _MODES:
            raise ValueError(f"bad metric {spec!r}: normalize mode must be one of {', '.join(_MODES)}")
        return exact_match(*args[:1], normalize=args[1] if len(args) == 2 else "basic")
    if name == "jaccard" and 1 <= len(args) <= 2:
        return jaccard(args[0], valid_from=args[1] if len(args) == 2 else None)
    if name == "f1" and len(args) <= 1:
        return f1(*args)
    if name not in ("exact_match", "jaccard", "f1", "llm_judge") and ":" in spec:
        target, _, attr = spec.rpartition(":")
        if target and attr.isidentifier():
            return _import_metric(spec, target, attr)
    raise ValueError(f"unknown metric {spec!r}: expected one of {_FORMS}")
