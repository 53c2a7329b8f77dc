"""Datasets of labelled rows: load JSONL / JSON / CSV files (and SAMMO split files), split them, sample them.

Every row becomes a :class:`Row` ``(inputs, output, id)``. Normalization of one raw row, in this order:

1. A field map (``map={"target": "output.answer", "question": "inputs.question"}``, CLI ``src=dest``) moves
   each source key to a destination path (``inputs.X``, ``output.X`` or ``id``); it wins over the defaults.
   A mapped key missing from a row is an error (it catches typos).
2. Key ``inputs`` (must be a dict) is used as the inputs; key ``output`` is used as is when it is a dict,
   otherwise it becomes ``{"output": value}``.
3. The seed talk's form: ``input`` goes to ``inputs["input"]``; a scalar target under ``output`` or ``target``
   goes to ``output["output"]``; ``outputs`` (a list of acceptable answers, as in instruction_induction)
   goes to ``output={"output": first, "outputs": list}``.
4. Key ``id`` becomes the row id (as a string); keys written ``inputs.X`` / ``output.X`` (CSV headers) go to
   that path; every other key goes into inputs.

A row that is not an object, has no inputs, or has non-dict ``inputs`` raises :class:`DatasetError`, whose
one-line message names the file, the row (1-based line for JSONL and CSV) and what is wrong.

A SAMMO instruction-tuning file (a JSON object with ``task_id, instructions, d_incontext, d_train, d_val,
d_test``) loads as rows = train + val + test, with ``train``/``dev``/``test`` set from ``d_train``/``d_val``/
``d_test``, ``incontext`` from ``d_incontext`` and ``instructions`` as in the file; its rows get ids
``<task_id>-<split>-<n>``. ``limit`` there caps each split.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, overload

from pydantic import BaseModel, ConfigDict

__all__ = ["Dataset", "DatasetError", "Row", "parse_map", "spread_by"]

T = TypeVar("T")

_SAMMO_KEYS = {"task_id", "instructions", "d_incontext", "d_train", "d_val", "d_test"}
_SAMMO_SPLITS = (("incontext", "d_incontext"), ("train", "d_train"), ("dev", "d_val"), ("test", "d_test"))


class Row(BaseModel):
    """One labelled example: what the flow reads (``inputs``) and what it should produce (``output``)."""

    model_config = ConfigDict(frozen=True)

    inputs: dict[str, Any]
    output: dict[str, Any] = {}
    id: str | None = None

    @classmethod
    def of(cls, value: Row | Mapping[str, Any]) -> Row:
        """A Row as it is, or a raw dict (``{"inputs", "output"}`` or the seed talk's form) normalized."""
        if isinstance(value, Row):
            return value
        return _normalize(dict(value) if isinstance(value, Mapping) else value, {}, "example", "example")


class DatasetError(ValueError):
    """A dataset that cannot be read or normalized; the message names the file, the row and the problem."""

    def __init__(self, source: str, problem: str, where: str | None = None) -> None:
        self.source, self.problem, self.where = source, problem, where
        super().__init__(f"{source}: {where}: {problem}" if where else f"{source}: {problem}")


def parse_map(items: Sequence[str]) -> dict[str, str]:
    """Parse CLI field-map items ``src=dest`` (dest ``inputs.X``, ``output.X`` or ``id``) into a dict."""
    result: dict[str, str] = {}
    for item in items:
        src, sep, dest = (part.strip() for part in item.partition("="))
        if not sep or not src or not dest:
            raise DatasetError("--map", f"bad item {item!r}: expected src=dest, e.g. target=output.answer")
        _check_dest(dest, "--map")
        result[src] = dest
    return result


def _check_dest(dest: str, source: str) -> None:
    head, _, name = dest.partition(".")
    if dest != "id" and (head not in ("inputs", "output") or not name):
        raise DatasetError(source, f"bad map destination {dest!r}: expected inputs.NAME, output.NAME or id")


def _checked_map(field_map: Mapping[str, str] | None, source: str) -> dict[str, str]:
    for dest in (field_map or {}).values():
        _check_dest(dest, source)
    return dict(field_map or {})


def _normalize_all(raws: Sequence[Any], field_map: dict[str, str], source: str, label: str) -> list[Row]:
    return [_normalize(raw, field_map, source, f"{label} {i}") for i, raw in enumerate(raws, 1)]


def _normalize(raw: Any, field_map: Mapping[str, str], source: str, where: str) -> Row:  # noqa: C901 - one rule per row shape
    """Turn one raw row into a Row following the rules in the module docstring."""
    if isinstance(raw, Row):
        return raw
    if not isinstance(raw, dict):
        raise DatasetError(source, f"row is not an object (got {type(raw).__name__})", where)
    for part in (raw, raw.get("inputs"), raw.get("output")):
        odd = [k for k in part if not isinstance(k, str)] if isinstance(part, dict) else []
        if odd:
            raise DatasetError(source, f"field names must be strings, got {odd[0]!r}", where)
    rest = dict(raw)
    inputs: dict[str, Any] = {}
    output: dict[str, Any] = {}
    row_id: Any = None

    def place(dest: str, value: Any) -> None:
        nonlocal row_id
        if dest == "id":
            row_id = value
            return
        head, _, name = dest.partition(".")
        target = inputs if head == "inputs" else output
        if name in target:
            raise DatasetError(source, f"field {dest!r} is given twice", where)
        target[name] = value

    for src, dest in field_map.items():
        if src not in rest:
            raise DatasetError(source, f"row has no field {src!r} named in the map (has {sorted(rest)})", where)
        place(dest, rest.pop(src))
    if "inputs" in rest:
        given = rest.pop("inputs")
        if not isinstance(given, dict):
            raise DatasetError(source, f"'inputs' must be an object, got {type(given).__name__}", where)
        inputs = {**given, **inputs}
    if "output" in rest:
        value = rest.pop("output")
        output = {**value, **output} if isinstance(value, dict) else {"output": value, **output}
    if "target" in rest:
        output.setdefault("output" if "output" not in output else "target", rest.pop("target"))
    if "outputs" in rest:
        answers = rest.pop("outputs")
        answers = list(answers) if isinstance(answers, (list, tuple)) else [answers]
        if not answers:
            raise DatasetError(source, "'outputs' is an empty list", where)
        output.setdefault("output", answers[0])
        output.setdefault("outputs", answers)
    if "id" in rest:
        value = rest.pop("id")
        row_id = value if row_id is None else row_id
    for key, value in rest.items():
        head, dot, name = key.partition(".")
        place(key if dot and head in ("inputs", "output") and name else f"inputs.{key}", value)
    if not inputs:
        raise DatasetError(source, "row has no inputs", where)
    return Row(inputs=inputs, output=output, id=None if row_id is None else str(row_id))


class Dataset:
    """Rows of inputs and expected outputs, with optional train/dev/test splits (each a Dataset)."""

    _LABELS = ("train", "dev", "test")

    def __init__(
        self,
        rows: Sequence[Row],
        *,
        name: str | None = None,
        train: Dataset | None = None,
        dev: Dataset | None = None,
        test: Dataset | None = None,
        incontext: Dataset | None = None,
        instructions: str | list[str] | None = None,
    ) -> None:
        self.rows: list[Row] = list(rows)
        self.name = name
        self.train, self.dev, self.test = train, dev, test
        self.incontext = incontext
        self.instructions = instructions

    # ----------------------------------------------------------------------------------------- building
    @classmethod
    def from_rows(
        cls,
        rows: Sequence[Mapping[str, Any] | Row],
        *,
        name: str | None = None,
        map: Mapping[str, str] | None = None,
        source: str = "rows",
    ) -> Dataset:
        """Build a Dataset from raw dicts (normalized as the module docstring says) or Rows."""
        out = _normalize_all(rows, _checked_map(map, source), source, "row")
        if not out:
            raise DatasetError(source, "no rows")
        return cls(out, name=name)

    @classmethod
    def load(cls, path: str | Path, map: Mapping[str, str] | None = None, limit: int | None = None) -> Dataset:
        """Load a .jsonl, .json (a list of rows or a SAMMO split file) or .csv file of rows."""
        path = Path(path)
        source = str(path)
        field_map = _checked_map(map, source)
        if limit is not None and limit < 1:
            raise DatasetError(source, f"limit must be at least 1, got {limit}")
        suffix = path.suffix.lower()
        if suffix not in (".jsonl", ".json", ".csv"):
            raise DatasetError(source, f"unknown file type {suffix or '(none)'!r}: expected .jsonl, .json or .csv")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(source, f"cannot read file: {exc.__class__.__name__}: {exc}") from None
        name = path.stem
        if suffix == ".jsonl":
            rows = cls._jsonl_rows(text, field_map, source, limit)
        elif suffix == ".csv":
            rows = cls._csv_rows(text, field_map, source, limit)
        else:
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DatasetError(source, f"invalid JSON: {exc.msg}", f"line {exc.lineno}") from None
            if isinstance(data, dict) and _SAMMO_KEYS <= set(data):
                return cls._sammo(data, field_map, source, limit, name)
            if not isinstance(data, list):
                raise DatasetError(
                    source, f"expected a JSON list of rows or a SAMMO split file, got {type(data).__name__}"
                )
            rows = _normalize_all(data[:limit] if limit else data, field_map, source, "row")
        if not rows:
            raise DatasetError(source, "no rows")
        return cls(rows, name=name)

    @staticmethod
    def _jsonl_rows(text: str, field_map: dict[str, str], source: str, limit: int | None) -> list[Row]:
        rows: list[Row] = []
        for lineno, line in enumerate(text.split("\n"), 1):  # not splitlines(): U+2028 may sit inside a value
            if limit is not None and len(rows) >= limit:
                break
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(source, f"invalid JSON: {exc.msg} (column {exc.colno})", f"line {lineno}") from None
            rows.append(_normalize(raw, field_map, source, f"line {lineno}"))
        return rows

    @staticmethod
    def _csv_rows(text: str, field_map: dict[str, str], source: str, limit: int | None) -> list[Row]:
        rows: list[Row] = []
        # Read as CSV, not line by line: a quoted field may hold newlines and U+2028.
        reader = csv.DictReader(io.StringIO(text, newline=""))
        try:
            for raw in reader:
                if limit is not None and len(rows) >= limit:
                    break
                if None in raw:
                    raise DatasetError(source, "row has more cells than the header", f"line {reader.line_num}")
                if any(value is None for value in raw.values()):
                    raise DatasetError(source, "row has fewer cells than the header", f"line {reader.line_num}")
                rows.append(_normalize(raw, field_map, source, f"line {reader.line_num}"))
        except csv.Error as exc:
            raise DatasetError(source, f"invalid CSV: {exc}", f"line {reader.line_num}") from None
        return rows

    @classmethod
    def _sammo(
        cls, data: dict[str, Any], field_map: dict[str, str], source: str, limit: int | None, name: str
    ) -> Dataset:
        parts: dict[str, Dataset] = {}
        task = str(data["task_id"])
        for attr, key in _SAMMO_SPLITS:
            raws = data[key]
            if not isinstance(raws, list):
                raise DatasetError(source, f"{key!r} must be a list, got {type(raws).__name__}")
            rows = []
            for i, raw in enumerate(raws[:limit] if limit else raws, 1):
                if isinstance(raw, dict) and "id" not in raw:
                    raw = {**raw, "id": f"{task}-{attr}-{i - 1}"}
                rows.append(_normalize(raw, field_map, source, f"{key} row {i}"))
            parts[attr] = cls(rows, name=f"{name}:{attr}")
        all_rows = parts["train"].rows + parts["dev"].rows + parts["test"].rows
        if not all_rows:
            raise DatasetError(source, "no rows")
        splits = {attr: part or None for attr, part in parts.items()}
        return cls(all_rows, name=name, instructions=data["instructions"], **splits)

    # ---------------------------------------------------------------------------------------- splitting
    def split(
        self,
        train: float | int = 0.5,
        dev: float | int = 0.25,
        test: float | int = 0.25,
        seed: int = 0,
        stratify: str | None = None,
    ) -> Dataset:
        """Shuffle with ``random.Random(seed)`` and cut into train/dev/test; an ``int`` is a row count, a
        ``float`` a fraction of the rows. An empty part is ``None``. Returns a new Dataset. ``stratify`` names an
        output field (a label): each part then holds its values in the whole set's proportions (to about a row
        per value), so a small dev set cannot favour one label that test does not."""
        sizes = (train, dev, test)
        n = len(self.rows)
        if any(isinstance(s, bool) or not isinstance(s, (int, float)) or s < 0 for s in sizes):
            raise ValueError(f"split sizes must be non-negative numbers, got {sizes}")
        counts = [s if isinstance(s, int) else 0 for s in sizes]
        fractions = [float(s) if isinstance(s, float) else 0.0 for s in sizes]
        if sum(fractions) > 1 + 1e-9:
            raise ValueError(f"split fractions add up to more than 1: {sizes}")
        if sum(counts) > n:
            raise ValueError(f"split counts add up to {sum(counts)}, more than the {n} rows")
        free = n - sum(counts)
        bounds, acc, cum = [0], 0, 0.0
        for count, fraction in zip(counts, fractions, strict=True):
            cum += fraction
            acc += count
            bounds.append(min(n, acc + round(free * cum)))
        if stratify is None:
            order = list(self.rows)
            random.Random(seed).shuffle(order)
        else:
            order = _stratified(self.rows, stratify, random.Random(seed))
        parts = [order[bounds[i] : bounds[i + 1]] for i in range(3)]
        made = {
            label: Dataset(part, name=f"{self.name}:{label}" if self.name else label) if part else None
            for part, label in zip(parts, self._LABELS, strict=True)
        }
        return Dataset(self.rows, name=self.name, incontext=self.incontext, instructions=self.instructions, **made)

    def sample(self, n: int, seed: int = 0, stratify: str | None = None) -> Dataset:
        """A seeded random sample of ``min(n, len(self))`` rows, as a new Dataset; ``stratify`` (an output
        field) keeps its values in the whole set's proportions, as in :meth:`split`."""
        if n < 0:
            raise ValueError(f"sample size must be non-negative, got {n}")
        if stratify is None:
            picked = random.Random(seed).sample(self.rows, min(n, len(self.rows)))
        else:
            picked = _stratified(self.rows, stratify, random.Random(seed))[:n]
        return Dataset(picked, name=self.name)

    # ------------------------------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    @overload
    def __getitem__(self, index: int) -> Row: ...
    @overload
    def __getitem__(self, index: slice) -> Dataset: ...
    def __getitem__(self, index: int | slice) -> Row | Dataset:
        if isinstance(index, slice):
            return Dataset(self.rows[index], name=self.name)
        return self.rows[index]

    def __repr__(self) -> str:
        parts = [f"{label}={len(getattr(self, label))}" for label in self._LABELS if getattr(self, label)]
        extra = (", " + ", ".join(parts)) if parts else ""
        return f"Dataset(name={self.name!r}, rows={len(self.rows)}{extra})"


def _stratified(rows: Sequence[Row], field: str, rng: random.Random) -> list[Row]:
    """The rows in a seeded order that keeps each value of ``output[field]`` in proportion (see `spread_by`)."""
    for i, row in enumerate(rows):
        if field not in row.output:
            raise ValueError(
                f"cannot stratify on output field {field!r}: row {row.id or i + 1} has no such field "
                f"(it has {sorted(row.output) or 'none'})"
            )
    return spread_by(rows, lambda row: json.dumps(row.output[field], sort_keys=True, default=str), rng)


def spread_by(items: Sequence[T], label: Callable[[T], str], rng: random.Random) -> list[T]:
    """The items in a seeded order whose every run of consecutive items holds each `label` in proportion (to
    about an item): each label's items are shuffled, then spread evenly at a random phase. Its prefixes are
    stratified samples."""
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(label(item), []).append(item)
    keyed: list[tuple[float, T]] = []
    for members in groups.values():
        rng.shuffle(members)
        phase = rng.random()
        keyed += [((i + phase) / len(members), item) for i, item in enumerate(members)]
    keyed.sort(key=lambda pair: pair[0])
    return [item for _, item in keyed]
