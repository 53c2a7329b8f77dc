"""The tasks of ``benchmarks/optimize.py``: one micro-prompt flow each, a metric, and seeded data splits.

Seed prompts are plain one-line task descriptions with no examples; labels are enums where the label set is
closed. The data stays in ``../shared/data`` (read in place, never copied into the repository); the seat cases
come from ``examples/seats/data`` (train, dev and test files pooled, then split like the others).

| task | data | output | metric |
|---|---|---|---|
| seats | ``examples/seats/data/*.jsonl`` (110 rows) | up to 3 seat ids | Jaccard, -0.25 per invented id |
| navigate | BBH ``navigate.jsonl`` (250) | ``Yes`` / ``No`` | exact match |
| object_counting | BBH ``object_counting.jsonl`` (250) | an integer | exact match |
| sports_understanding | BBH ``sports_understanding.jsonl`` (250) | ``yes`` / ``no`` | exact match |
| implicatures | SAMMO ``implicatures.json`` (100 / 50 / 100) | ``yes`` / ``no`` | exact match (SAMMO norm.) |

Splits: a seeded shuffle; dev and test sizes are arguments, train is the rest. For implicatures the SAMMO file's
own splits are kept apart: dev is a seeded sample of ``d_val``, test of ``d_test``, train is ``d_train``. The
yes/no tasks (navigate, sports_understanding, implicatures) are stratified by their label, so dev and test hold
yes and no in the same proportions: with Qwen 0.5B answering one label on every row, unstratified splits of
opposite majorities (sports: dev 63% yes, test 42%) turned a flip of that constant answer into a dev gain and a
test loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from examples.bbh.flow import flow as navigate_flow
from examples.seats.flow import flow as seats_flow
from examples.seats.metric import seat_metric
from microprompts import Flow, MicroPrompt
from microprompts.data import Dataset
from microprompts.evals.metrics import exact_match

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = ROOT.parent / "shared" / "data"
BBH_MAP = {"input": "inputs.question", "target": "output.answer"}


class YesNo(BaseModel):
    """A lower-case yes or no."""

    answer: Literal["yes", "no"]


class Count(BaseModel):
    """How many objects of the asked kind there are."""

    answer: int = Field(ge=0, description="The total, as a whole number.")


sports_flow = Flow("bbh_sports_understanding").then(
    MicroPrompt(
        "plausible",
        task="Say whether the sentence about sports is plausible: yes or no.",
        inputs={"question": "The question, with the sentence to judge."},
        output=YesNo,
    )
)

counting_flow = Flow("bbh_object_counting").then(
    MicroPrompt(
        "count",
        task="Count the objects of the kind the question asks about and answer with their total as a number.",
        inputs={"question": "The list of things the speaker has, and the question."},
        output=Count,
    )
)

implicatures_flow = Flow("sammo_implicatures").then(
    MicroPrompt(
        "implicature",
        task="Does Speaker 2's answer mean yes or no?",
        inputs={"dialogue": "Speaker 1's question and Speaker 2's answer."},
        output=YesNo,
    )
)


@dataclass(frozen=True)
class Splits:
    """Train, dev and test rows of one task."""

    train: list[Any]
    dev: list[Any]
    test: list[Any]


@dataclass(frozen=True)
class Task:
    """A benchmark task: its seed flow, metric and a function making seeded splits ``(dev, test, seed)``."""

    name: str
    flow: Flow
    metric: Callable[..., Any]
    splits: Callable[[int, int, int], Splits]
    source: str


def _shuffled_splits(ds: Dataset, dev: int, test: int, seed: int, stratify: str | None = None) -> Splits:
    if dev + test >= len(ds):
        raise ValueError(f"{ds.name}: {len(ds)} rows cannot give dev {dev} + test {test} and a train split")
    parts = ds.split(train=len(ds) - dev - test, dev=dev, test=test, seed=seed, stratify=stratify)
    return Splits(list(parts.train or []), list(parts.dev or []), list(parts.test or []))


def _file(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"benchmark data not found at {path} (expected ../shared/data next to the repo)")
    return path


def _bbh(task: str, stratify: str | None = None) -> Callable[[int, int, int], Splits]:
    def splits(dev: int, test: int, seed: int) -> Splits:
        return _shuffled_splits(
            Dataset.load(_file(SHARED_DATA / "bbh" / f"{task}.jsonl"), map=BBH_MAP), dev, test, seed, stratify
        )

    return splits


def _seats(dev: int, test: int, seed: int) -> Splits:
    rows = [
        row
        for part in ("train", "dev", "test")
        for row in Dataset.load(ROOT / "examples" / "seats" / "data" / f"{part}.jsonl")
    ]
    return _shuffled_splits(Dataset(rows, name="seats"), dev, test, seed)


def _implicatures(dev: int, test: int, seed: int) -> Splits:
    ds = Dataset.load(
        _file(SHARED_DATA / "sammo_instruction_tuning" / "implicatures.json"),
        map={"input": "inputs.dialogue", "output": "output.answer"},
    )
    assert ds.train is not None and ds.dev is not None and ds.test is not None
    return Splits(
        list(ds.train),
        list(ds.dev.sample(dev, seed, stratify="answer")),
        list(ds.test.sample(test, seed, stratify="answer")),
    )


TASKS: dict[str, Task] = {
    "seats": Task("seats", seats_flow, seat_metric, _seats, "examples/seats/data (pooled)"),
    "navigate": Task(
        "navigate",
        navigate_flow,
        exact_match("answer"),
        _bbh("navigate", stratify="answer"),
        "../shared/data/bbh/navigate.jsonl",
    ),
    "object_counting": Task(
        "object_counting",
        counting_flow,
        exact_match("answer"),
        _bbh("object_counting"),
        "../shared/data/bbh/object_counting.jsonl",
    ),
    "sports_understanding": Task(
        "sports_understanding",
        sports_flow,
        exact_match("answer"),
        _bbh("sports_understanding", stratify="answer"),
        "../shared/data/bbh/sports_understanding.jsonl",
    ),
    "implicatures": Task(
        "implicatures",
        implicatures_flow,
        exact_match("answer", normalize="sammo"),
        _implicatures,
        "../shared/data/sammo_instruction_tuning/implicatures.json",
    ),
}
