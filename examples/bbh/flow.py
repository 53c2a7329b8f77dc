"""BBH ``navigate``: does following the instructions return you to the starting point? Yes or No.

The data stays in ``../shared/data/bbh`` (it is not copied into the project); :func:`load` reads it.

CLI (the shared file's ``input``/``target`` fields mapped onto the flow's ``question``/``answer``)::

    microprompts evaluate examples/bbh/flow.py:flow --data ../shared/data/bbh/navigate.jsonl \\
        --map input=inputs.question --map target=output.answer \\
        --metric examples/bbh/metric.py:bbh_metric --limit 20
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from microprompts import Flow, MicroPrompt
from microprompts.data import Dataset

TASK = "navigate"
DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "bbh"
FIELD_MAP = {"input": "inputs.question", "target": "output.answer"}
SPLITS = {"train": 50, "dev": 50}  # the rest of the 250 rows is the test split


class Answer(BaseModel):
    """The answer, one of the task's two options."""

    answer: Literal["Yes", "No"]


navigate = MicroPrompt(
    "navigate",
    task="Answer the question about following the movement instructions: Yes or No.",
    inputs={"question": "The instructions and the question."},
    output=Answer,
)

flow = Flow("bbh_navigate").then(navigate)


def data_file(task: str = TASK) -> Path:
    """The shared BBH file for ``task``; a clear error when the shared data is not there."""
    path = DATA_DIR / f"{task}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(
            f"BBH data not found at {path}: this example reads ../shared/data/bbh/{task}.jsonl next to the repo"
        )
    return path


def load(split: Literal["train", "dev", "test", "all"] = "all", task: str = TASK) -> Dataset:
    """The task's rows as ``{"question"} -> {"answer"}``; seeded splits of 50 train, 50 dev, the rest test."""
    ds = Dataset.load(data_file(task), map=FIELD_MAP)
    if split == "all":
        return ds
    if split not in ("train", "dev", "test"):
        raise ValueError(f"unknown split {split!r}: expected train, dev, test or all")
    parts = ds.split(train=SPLITS["train"], dev=SPLITS["dev"], test=len(ds) - sum(SPLITS.values()), seed=0)
    part: Dataset | None = getattr(parts, split)
    if part is None:
        raise ValueError(f"{data_file(task)} has too few rows for a {split!r} split")
    return part
