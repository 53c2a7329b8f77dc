"""The benchmark's tasks: where their data lives, how it is split, the seed prompt, how a row is shown to a
single-prompt peer, and which scorer (``common.score``) applies.

``prepare(task, out_dir, ...)`` writes ``train.jsonl``, ``dev.jsonl``, ``test.jsonl``, ``incontext.jsonl`` and
``meta.json`` into ``out_dir`` (a work folder, never the repository): rows are
``{"id", "inputs": {...}, "output": {...}, "text": <the single-prompt rendering of the inputs>, "answer": <gold>}``.
Stdlib only, so the harness can run it with any Python.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
DATA = Path("/work/shared/data") if Path("/work/shared/data").is_dir() else REPO.parent / "shared" / "data"

HOTPOT_SELECT = "Copy the sentences from the paragraphs that are needed to answer the question."
HOTPOT_ANSWER = "Answer the question using the facts. Reply with a short answer of a few words."
OBJECT_COUNTING = "Count the objects the question asks about and answer with their total as a number."

TASKS: dict[str, dict[str, Any]] = {
    "implicatures": {
        "source": "sammo_instruction_tuning/implicatures.json",
        "metric": "em",
        "kind": "single",
        "labels": ["yes", "no"],
    },
    "navigate": {
        "source": "sammo_instruction_tuning/navigate.json",
        "metric": "em",
        "kind": "single",
        "labels": ["True", "False"],
    },
    "object_counting": {
        "source": "bbh/object_counting.jsonl",
        "metric": "em",
        "kind": "single",
        "labels": None,
        "instruction": OBJECT_COUNTING,
    },
    "seats": {"source": "examples/seats/data (repository)", "metric": "seats", "kind": "single", "labels": None},
    "hotpot": {
        "source": "hotpotqa/aflow_validate200_distractor.jsonl",
        "metric": "hotpot",
        "kind": "pipeline",
        "labels": None,
        "instruction": HOTPOT_SELECT,
        "instructions": [HOTPOT_SELECT, HOTPOT_ANSWER],
    },
}


def _sample(rows: list[dict[str, Any]], n: int | None, seed: int) -> list[dict[str, Any]]:
    if n is None or n >= len(rows):
        return list(rows)
    return random.Random(seed).sample(rows, n)


def _split(rows: list[dict[str, Any]], sizes: tuple[int, int, int], seed: int) -> tuple[list, list, list]:
    """Train, dev and test drawn from one pool: the test rows are seed 0's whatever the seed (a seed changes only
    the train/dev draw, from the rows outside test), so seeds compare on the same test rows."""
    shuffled = list(rows)
    random.Random(0).shuffle(shuffled)
    train_n, dev_n, test_n = sizes
    if train_n + dev_n + test_n > len(shuffled):
        raise ValueError(f"asked for {sizes} rows, the data has {len(shuffled)}")
    test = shuffled[train_n + dev_n : train_n + dev_n + test_n]
    if seed != 0:
        shuffled = shuffled[: train_n + dev_n] + shuffled[train_n + dev_n + test_n :]
        random.Random(seed).shuffle(shuffled)
    return shuffled[:train_n], shuffled[train_n : train_n + dev_n], test


def _text_row(rid: str, text: str, answer: str) -> dict[str, Any]:
    return {"id": rid, "inputs": {"input": text}, "output": {"answer": answer}, "text": text, "answer": answer}


def render_seats(inputs: dict[str, Any]) -> str:
    return f"Preferences: {inputs['preferences']}\nAvailable seats: {', '.join(inputs['available_seats'])}"


def render_paragraphs(context: list) -> str:
    return "\n".join(f"[{i}] {title}: {''.join(sentences).strip()}" for i, (title, sentences) in enumerate(context, 1))


def _seat_rows(split: str) -> list[dict[str, Any]]:
    path = REPO / "examples" / "seats" / "data" / f"{split}.jsonl"
    if path.is_file():
        raws = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    else:  # the generator, when the committed data is not there
        import sys

        sys.path.insert(0, str(REPO))
        from examples.seats.cases import generate  # type: ignore

        raws = generate({"train": 40, "dev": 30, "test": 40}[split], seed={"train": 1, "dev": 2, "test": 3}[split])
    return [
        {
            "id": r["id"],
            "inputs": r["inputs"],
            "output": r["output"],
            "text": render_seats(r["inputs"]),
            "answer": ", ".join(r["output"]["recommended_seats"]),
        }
        for r in raws
    ]


def prepare(
    task: str, out_dir: str | Path, train: int = 50, dev: int = 30, test: int = 50, seed: int = 0
) -> dict[str, Any]:
    """Write the task's splits and meta into ``out_dir``; returns the meta."""
    spec = TASKS[task]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {
        "task": task,
        "metric": spec["metric"],
        "kind": spec["kind"],
        "labels": spec["labels"],
        "source": spec["source"],
        "seed": seed,
    }
    if spec["source"].startswith("sammo_instruction_tuning/"):
        data = json.loads((DATA / spec["source"]).read_text())
        meta["instruction"] = data["instructions"].strip()

        def rows(key: str) -> list[dict[str, Any]]:
            return [_text_row(f"{task}-{key}-{i}", r["input"], str(r["output"])) for i, r in enumerate(data[key])]

        parts = {
            "train": _sample(rows("d_train"), train, seed),
            "dev": _sample(rows("d_val"), dev, seed),
            "test": _sample(rows("d_test"), test, 0),  # the same test rows for every seed
            "incontext": rows("d_incontext"),
        }
        meta["split"] = "the file's d_train / d_val / d_test, a seeded sample of each; incontext = d_incontext"
    elif task == "object_counting":
        raws = [json.loads(line) for line in (DATA / spec["source"]).read_text().splitlines() if line.strip()]
        all_rows = [_text_row(r["id"], r["input"], str(r["target"])) for r in raws]
        tr, dv, te = _split(all_rows, (train, dev, test), seed)
        parts = {"train": tr, "dev": dv, "test": te, "incontext": tr[:5]}
        meta["instruction"] = spec["instruction"]
        meta["split"] = f"seeded shuffle of the 250 rows (test: seed 0's; train/dev: seed {seed})"
    elif task == "seats":
        sys_path_flow = REPO / "examples" / "seats" / "flow.py"
        text = sys_path_flow.read_text() if sys_path_flow.is_file() else ""
        marker = 'task="'
        meta["instruction"] = (
            text.split(marker, 1)[1].split('"', 1)[0]
            if marker in text
            else ("Propose the top 3 seats for the traveler, given their seating preferences and the available seats.")
        )
        tr, dv, te = _seat_rows("train"), _seat_rows("dev"), _seat_rows("test")
        parts = {
            "train": _sample(tr, train, seed),
            "dev": _sample(dv, dev, seed),
            "test": _sample(te, test, 0),  # the same test rows for every seed
            "incontext": tr[:5],
        }
        meta["split"] = "examples/seats/data train / dev / test (committed, generated by examples.seats.cases)"
    elif task == "hotpot":
        raws = [json.loads(line) for line in (DATA / spec["source"]).read_text().splitlines() if line.strip()]
        all_rows = []
        for r in raws:
            paragraphs = render_paragraphs(r["context"])
            all_rows.append(
                {
                    "id": r["id"],
                    "inputs": {"question": r["question"], "paragraphs": paragraphs},
                    "output": {"answer": r["answer"]},
                    "text": f"Question: {r['question']}\nParagraphs:\n{paragraphs}",
                    "answer": r["answer"],
                    "supporting_facts": r["supporting_facts"],
                }
            )
        tr, dv, te = _split(all_rows, (train, dev, test), seed)
        parts = {"train": tr, "dev": dv, "test": te, "incontext": tr[:5]}
        meta["instruction"] = spec["instruction"]
        meta["instructions"] = spec["instructions"]
        meta["split"] = f"seeded shuffle of the 200 AFlow validation questions (test: seed 0's; train/dev: seed {seed})"
    else:
        raise KeyError(task)
    for name, part in parts.items():
        with open(out / f"{name}.jsonl", "w", encoding="utf-8") as fh:
            for row in part:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    meta["sizes"] = {name: len(part) for name, part in parts.items()}
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    return meta
