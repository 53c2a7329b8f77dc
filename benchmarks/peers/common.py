"""Shared, stdlib-only helpers for every runner, whatever virtual environment runs it.

One scorer for every system: a runner hands over the text (or structure) its program produced for a row and
:func:`score` turns it into a number the same way for baseline, microprompts, SAMMO, DSPy and TextGrad.

- ``em`` tasks (implicatures, navigate, object_counting): the answer is the text after the last
  ``answer:`` marker when there is one (else the whole reply), lower-cased with surrounding quotes,
  asterisks and trailing punctuation stripped and all whitespace removed (SAMMO's normalization), and must
  equal the gold label normalized the same way.
- ``seats``: the seed talk's loss as a score, as ``examples/seats/metric.py`` defines it (Jaccard with the
  correct seats, minus 0.25 per seat id not in ``available_seats`` and per seat beyond the top 3, floor 0);
  a text reply is split into items on commas, semicolons and new lines. The harness re-scores the final
  predictions with the project's own ``seat_metric`` and records both.
- ``hotpot``: SQuAD answer F1 (the score) and exact match (reported next to it).
"""

from __future__ import annotations

import json
import os
import re
import string
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

_STRIP = "\"'`*“”‘’«» \t\n"
_TRAILING = ".,;:!?"


# ------------------------------------------------------------------------------------------------ files
def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON atomically (a killed run never leaves half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    os.replace(tmp, path)


def load_cell(config_path: str) -> dict[str, Any]:
    """A runner's cell config plus its task's rows and meta (see run.py for the fields)."""
    cell = json.loads(Path(config_path).read_text())
    data = Path(cell["data_dir"])
    cell["meta"] = json.loads((data / "meta.json").read_text())
    for split in ("train", "dev", "test"):
        cell[split] = read_jsonl(data / f"{split}.jsonl")
    return cell


# ------------------------------------------------------------------------------------------------ scoring
def extract_answer(text: Any) -> str:
    """The answer part of a free-text reply: after the last ``answer:`` marker, its first non-empty line."""
    text = "" if text is None else str(text)
    marks = [m.end() for m in re.finditer(r"answer\s*:", text, flags=re.IGNORECASE)]
    if marks:
        rest = text[marks[-1] :]
        lines = [line for line in rest.splitlines() if line.strip()]
        text = lines[0] if lines else ""
    return text


def normalize_label(text: Any) -> str:
    value = extract_answer(text).lower()
    previous = None
    while previous != value:
        previous = value
        value = value.strip(_STRIP).rstrip(_TRAILING)
    return "".join(value.split())


def _basic(text: Any) -> str:
    value = " ".join(str(text).lower().split())
    previous = None
    while previous != value:
        previous = value
        value = value.strip().strip("\"'`“”‘’«»").rstrip(_TRAILING)
    return value


def seat_items(value: Any) -> list[str]:
    """Predicted seat ids as distinct normalized items (as the project's jaccard metric reads them)."""
    if value is None:
        return []
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            try:
                value = json.loads(stripped)
            except ValueError:
                value = stripped.strip("[]")
    if isinstance(value, (list, tuple)):
        raw = [str(v) for v in value]
    else:
        raw = re.split(r"[,;\n]", extract_answer(value))
    items = [_basic(item).lstrip("-*•0123456789.) ").strip() for item in raw]
    return list(dict.fromkeys(item for item in items if item))


def seats_score(row: dict[str, Any], prediction: Any, penalty: float = 0.25, k: int = 3) -> float:
    predicted = seat_items(prediction)
    expected = [_basic(s) for s in row["output"]["recommended_seats"]]
    p_set, e_set = set(predicted), set(expected)
    union = p_set | e_set
    similarity = len(p_set & e_set) / len(union) if union else 1.0
    valid = {_basic(s) for s in row["inputs"]["available_seats"]}
    invalid = sum(1 for item in predicted if item not in valid)
    beyond = max(0, len(predicted) - k)
    return max(0.0, similarity - penalty * (invalid + beyond))


def _squad_tokens(text: Any) -> list[str]:
    text = str(text or "").lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return text.split()


def answer_f1(prediction: Any, gold: Any) -> float:
    p, g = _squad_tokens(extract_answer(prediction)), _squad_tokens(gold)
    if not p or not g:
        return float(p == g)
    common = sum((Counter(p) & Counter(g)).values())
    if not common:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def answer_em(prediction: Any, gold: Any) -> float:
    return float(_squad_tokens(extract_answer(prediction)) == _squad_tokens(gold))


def score(metric: str, row: dict[str, Any], prediction: Any) -> float:
    """The benchmark's score of one prediction for a row (higher is better, in [0, 1])."""
    if metric == "em":
        return float(normalize_label(prediction) == normalize_label(row["answer"]))
    if metric == "seats":
        return seats_score(row, prediction)
    if metric == "hotpot":
        return answer_f1(prediction, row["answer"])
    raise ValueError(f"unknown metric {metric!r}")


def score_all(metric: str, rows: list[dict[str, Any]], predictions: dict[str, Any]) -> dict[str, Any]:
    """Mean score over rows (a row without a prediction scores 0), plus EM for hotpot."""
    values = [score(metric, row, predictions.get(row["id"])) for row in rows]
    out: dict[str, Any] = {
        "score": sum(values) / len(values) if values else 0.0,
        "n": len(values),
        "missing": sum(1 for row in rows if predictions.get(row["id"]) is None),
    }
    if metric == "hotpot":
        out["em"] = sum(answer_em(predictions.get(r["id"]), r["answer"]) for r in rows) / max(1, len(rows))
        out["f1"] = out["score"]
    return out


def feedback(metric: str, row: dict[str, Any], prediction: Any) -> str:
    """A one-line note of what was wrong (for optimizers that read textual feedback, e.g. GEPA)."""
    value = score(metric, row, prediction)
    if value >= 1.0:
        return "Correct."
    gold = row["output"]["recommended_seats"] if metric == "seats" else row["answer"]
    return f"Incorrect (score {value:.2f}): expected {json.dumps(gold)}, got {json.dumps(str(prediction))[:300]}."


# ------------------------------------------------------------------------------------------------ plain calls
def chat(
    base_url: str,
    messages: list[dict[str, str]],
    max_tokens: int = 256,
    temperature: float = 0.0,
    timeout: float = 600,
    retries: int = 3,
) -> dict[str, Any]:
    """One OpenAI-compatible chat completion with urllib (no client library)."""
    body = json.dumps(
        {"model": "qwen", "messages": messages, "max_tokens": max_tokens, "temperature": temperature}
    ).encode()
    last: Exception | None = None
    for attempt in range(retries):
        request = urllib.request.Request(
            base_url.rstrip("/") + "/chat/completions",
            data=body,
            headers={"Content-Type": "application/json", "Authorization": "Bearer dummy"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                return json.loads(resp.read())
        except Exception as exc:  # noqa: BLE001
            last = exc
            time.sleep(1 + attempt)
    raise RuntimeError(f"chat call failed after {retries} tries: {last}")
