"""The model-free half of data synthesis: near-duplicate removal, the generated/rejected/kept report and the seeded
train/dev/test split files. The model-facing half (situations, rows, judge, teacher) is `microprompts.evals.synthesis`,
since `data` imports no other room."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from rapidfuzz import fuzz, process

from microprompts._io import atomic_write_text
from microprompts.data.dataset import Dataset, Row

__all__ = ["Deduper", "SynthesisReport", "canonical_inputs", "split_paths", "write_rows", "write_splits"]

SPLIT = (0.6, 0.2, 0.2)
"""The train/dev/test fractions of ``--split``."""


def canonical_inputs(inputs: dict[str, Any]) -> str:
    """A row's inputs as one normalized text (sorted keys, lower case, single spaces): what duplicates compare."""
    text = json.dumps(inputs, sort_keys=True, ensure_ascii=False, default=str).lower()
    return " ".join(text.split())


class Deduper:
    """Keeps the inputs seen so far and says whether a new one is an exact or a near duplicate (rapidfuzz's
    ``fuzz.ratio`` at or above ``threshold``, 0..100) of any of them."""

    def __init__(self, threshold: float = 92.0, seen: Iterable[dict[str, Any]] = ()) -> None:
        if not 0 < threshold <= 100:
            raise ValueError(f"near-duplicate threshold must be in (0, 100], got {threshold}")
        self.threshold = threshold
        self._texts: list[str] = []
        self._exact: set[str] = set()
        for inputs in seen:
            self.add(inputs)

    def verdict(self, inputs: dict[str, Any]) -> str | None:
        """``"duplicate"``, ``"near-duplicate"`` (naming the closest score) or None for new inputs."""
        text = canonical_inputs(inputs)
        if text in self._exact:
            return "duplicate"
        match = process.extractOne(text, self._texts, scorer=fuzz.ratio, score_cutoff=self.threshold)
        return None if match is None else "near-duplicate"

    def add(self, inputs: dict[str, Any]) -> None:
        """Remember these inputs as kept."""
        text = canonical_inputs(inputs)
        self._exact.add(text)
        self._texts.append(text)


class SynthesisReport(BaseModel):
    """How many rows were generated, rejected (counted by reason, with a few examples of each) and kept, and what
    the generator's and the teacher's calls cost."""

    generated: int = 0
    kept: int = 0
    rejected: dict[str, int] = Field(default_factory=dict)
    examples: dict[str, list[str]] = Field(default_factory=dict)
    situations: list[str] = Field(default_factory=list)
    calls: int = 0
    cached_calls: int = 0
    teacher_calls: int = 0
    teacher_cached_calls: int = 0
    budget_exhausted: bool = False

    def reject(self, reason: str, detail: str) -> None:
        """Count one rejected row (or reply) under `reason`, keeping up to three details of each reason."""
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < 3:
            shown.append(detail[:300])

    def line(self) -> str:
        """The one-line summary: generated, rejected by reason, kept."""
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(Counter(self.rejected).items())) or "none"
        taught = self.teacher_calls + self.teacher_cached_calls
        teacher = f", {self.teacher_calls} teacher calls ({self.teacher_cached_calls} cached)" if taught else ""
        tail = " (budget exhausted)" if self.budget_exhausted else ""
        return (
            f"synthesized: generated {self.generated}, rejected {sum(self.rejected.values())} ({reasons}), "
            f"kept {self.kept}; {self.calls} generator calls ({self.cached_calls} cached){teacher}{tail}"
        )


def _row_line(row: Row) -> str:
    data: dict[str, Any] = {"inputs": row.inputs, "output": row.output}
    if row.id is not None:
        data["id"] = row.id
    return json.dumps(data, ensure_ascii=False)


def write_rows(rows: Sequence[Row], path: str | Path) -> Path:
    """Write rows as JSONL in the canonical ``{"inputs", "output", "id"}`` shape, atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, "".join(_row_line(r) + "\n" for r in rows))
    return target


def split_paths(path: str | Path) -> dict[str, Path]:
    """Where ``--split`` writes the parts of FILE: ``FILE-stem.train.jsonl``, ``.dev.jsonl``, ``.test.jsonl``."""
    base = Path(path)
    stem = base.name[: -len(base.suffix)] if base.suffix else base.name
    return {label: base.with_name(f"{stem}.{label}.jsonl") for label in ("train", "dev", "test")}


def write_splits(rows: Sequence[Row], path: str | Path, seed: int = 0) -> dict[str, int]:
    """Shuffle the rows with `seed`, cut them 60/20/20 and write each part next to `path`; returns the sizes."""
    if not rows:
        raise ValueError("no rows to split")
    parts = Dataset(list(rows)).split(*SPLIT, seed=seed)
    sizes: dict[str, int] = {}
    for label, target in split_paths(path).items():
        part = getattr(parts, label)
        chosen = list(part) if part is not None else []
        write_rows(chosen, target)
        sizes[label] = len(chosen)
    return sizes
