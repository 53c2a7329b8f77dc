"""The run store: every served run (inputs, outputs, node traces, latency, tokens, artifact hash, error) and the
feedback users attach to it, in SQLite: the data for re-optimizing a deployed agent later.

Secrets never reach the file: every text written is scrubbed of the values of secret environment variables
(names containing KEY, TOKEN, SECRET or PASSWORD; see :func:`microprompts._io.secret_values`).
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from microprompts._io import secret_values

REDACTED = "[redacted]"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    flow TEXT NOT NULL,
    artifact_hash TEXT,
    endpoint TEXT NOT NULL,
    inputs TEXT NOT NULL,
    outputs TEXT,
    traces TEXT NOT NULL,
    latency REAL NOT NULL,
    calls INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    error TEXT
);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs(id),
    created REAL NOT NULL,
    score REAL NOT NULL,
    comment TEXT
);
CREATE INDEX IF NOT EXISTS feedback_run ON feedback(run_id);
CREATE INDEX IF NOT EXISTS runs_created ON runs(created);
"""


class UnknownRunError(KeyError):
    """Feedback or a lookup named a run id the store does not hold."""


class RunRecord(BaseModel):
    """One served run as stored: what came in, what went out, how it went, and what it cost."""

    id: str
    created: float = Field(default_factory=time.time)
    flow: str
    artifact_hash: str | None = None
    endpoint: str = "invoke"
    inputs: dict[str, Any]
    outputs: dict[str, Any] | None = None
    traces: list[dict[str, Any]] = Field(default_factory=list)
    latency: float = 0.0
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None


class Feedback(BaseModel):
    """A score (higher is better) and an optional comment a user attached to a run."""

    run_id: str
    created: float
    score: float
    comment: str | None = None


def scrub(text: str) -> str:
    """`text` with the value of every secret environment variable replaced by a marker."""
    for value in secret_values():
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def _dumps(value: Any) -> str:
    """JSON for a stored column: never fails (odd objects become strings), never holds a secret."""
    return scrub(json.dumps(value, ensure_ascii=False, default=str))


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class RunStore:
    """Runs and feedback in one SQLite file (WAL), safe to share between the server's threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
            self._conn.commit()

    def record(self, run: RunRecord) -> None:
        """Store one run (committed at once)."""
        row = (
            run.id, run.created, scrub(run.flow), run.artifact_hash, run.endpoint, _dumps(run.inputs),
            None if run.outputs is None else _dumps(run.outputs), _dumps(run.traces), run.latency, run.calls,
            run.prompt_tokens, run.completion_tokens, None if run.error is None else scrub(run.error),
        )
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", row)
            self._conn.commit()

    def add_feedback(self, run_id: str, score: float, comment: str | None = None) -> Feedback:
        """Attach feedback to a stored run; raises UnknownRunError for an id it does not hold."""
        if not isinstance(score, (int, float)) or isinstance(score, bool) or not math.isfinite(score):
            raise ValueError(f"score must be a finite number, got {score!r}")
        created = time.time()
        text = None if comment is None else scrub(comment)
        with self._lock:
            if self._conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                raise UnknownRunError(run_id)
            self._conn.execute(
                "INSERT INTO feedback (run_id, created, score, comment) VALUES (?,?,?,?)",
                (run_id, created, float(score), text),
            )
            self._conn.commit()
        return Feedback(run_id=run_id, created=created, score=float(score), comment=text)

    def get(self, run_id: str) -> dict[str, Any] | None:
        """One run with its feedback, as a JSON-ready dict; None when unknown."""
        with self._lock:
            cursor = self._conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,))
            row = cursor.fetchone()
            names = [d[0] for d in cursor.description]
            notes = self._conn.execute(
                "SELECT run_id, created, score, comment FROM feedback WHERE run_id = ? ORDER BY id", (run_id,)
            ).fetchall()
        if row is None:
            return None
        data = dict(zip(names, row, strict=True))
        for key in ("inputs", "outputs", "traces"):
            data[key] = _loads(data[key])
        data["feedback"] = [Feedback(run_id=r[0], created=r[1], score=r[2], comment=r[3]).model_dump() for r in notes]
        return data

    def runs(self, limit: int = 100, with_feedback_only: bool = False) -> list[dict[str, Any]]:
        """The most recent runs (newest first), each with its feedback."""
        query = "SELECT id FROM runs"
        if with_feedback_only:
            query += " WHERE id IN (SELECT run_id FROM feedback)"
        with self._lock:
            ids = [r[0] for r in self._conn.execute(query + " ORDER BY created DESC LIMIT ?", (limit,)).fetchall()]
        return [run for run_id in ids if (run := self.get(run_id)) is not None]

    def count(self) -> int:
        """How many runs are stored."""
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()
