"""What the `microprompts optimize` CLI tests share: the simulated topic flow's reference, rows written as JSONL,
and the arguments of a small run on them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.optimizers import engine_helpers as h

FLOW = "tests.optimizers.engine_helpers:topic_flow"


def write_rows(path: Path, rows: list[Any]) -> str:
    """`rows` as a JSONL file at `path`; its path as a string, for the command line."""
    path.write_text("".join(json.dumps(r.model_dump()) + "\n" for r in rows))
    return str(path)


def run_args(tmp_path: Path, out: Path, *, train: int = 8, dev: int = 8, calls: int = 60) -> list[str]:
    """A small run of the topic flow on `train` and `dev` simulated rows (written under `tmp_path`), exact match on
    the label, model `sim`, minibatch 4, into `out`, without a progress bar."""
    return [
        FLOW,
        "--train",
        write_rows(tmp_path / "train.jsonl", h.rows(0, train)),
        "--dev",
        write_rows(tmp_path / "dev.jsonl", h.rows(100, dev)),
        "--metric",
        "exact_match:label",
        "--model",
        "sim",
        "--budget-calls",
        str(calls),
        "--minibatch",
        "4",
        "--out",
        str(out),
        "--no-progress",
    ]
