"""The run store: every served run (inputs, outputs, node traces, latency, tokens, artifact hash, error) and the
feedback users attach to it, in SQLite: the data for re-optimizing a deployed agent later.

Secrets never reach the file: every text written is scrubbed of the values of secret environment variables
(names containing KEY, TOKEN, SECRET or PASSWORD; see :func:`microprompts._io.secret_values`) and of the values
registered with :func:`register_secret` (the server's API key). A run's inputs are stored once: a node trace's
input equal to the run's is kept as a reference (`run_inputs`) and put back when the run is read.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, Field

from microprompts._io import secret_forms, secret_values

REDACTED = "[redacted]"
_REGISTERED: set[str] = set()
_SUMMARY = (
    "id, created, flow, artifact_hash, endpoint, latency, calls, prompt_tokens, completion_tokens, "
    "substr(error, 1, 300), length(inputs), (SELECT COUNT(*) FROM feedback f WHERE f.run_id = runs.id), "
    "(SELECT score FROM feedback f WHERE f.run_id = runs.id ORDER BY f.id DESC LIMIT 1)"
)
_SUMMARY_NAMES = (
    "run_id",
    "created",
    "flow",
    "artifact_hash",
    "endpoint",
    "latency",
    "calls",
    "prompt_tokens",
    "completion_tokens",
    "error",
    "input_bytes",
    "feedback_count",
    "last_score",
)

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
    comment TEXT,
    correction TEXT
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_run ON feedback(run_id);
CREATE INDEX IF NOT EXISTS runs_created ON runs(created);
"""
SCHEMA_VERSION = 2  # 2: feedback.correction (a store of version 1 gains the column when opened)


class StoreError(ValueError):
    """A run store that cannot be read for analysis: missing, not a run store, corrupt or empty (one line)."""


class UnknownRunError(KeyError):
    """Feedback or a lookup named a run id the store does not hold."""


class RunRecord(BaseModel):
    """One served run as stored: what came in, what went out, how it went, and what it cost. Its id is `run_id`,
    as in every HTTP answer (`id=` is still accepted when building one)."""

    run_id: str = Field(validation_alias=AliasChoices("run_id", "id"))
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
    """A score (higher is better), an optional comment, and an optional correction (the output the run should
    have given, already checked against the flow's output fields) a user attached to a run."""

    run_id: str
    created: float
    score: float
    comment: str | None = None
    correction: dict[str, Any] | None = None


def register_secret(value: str) -> None:
    """Scrub `value` too from everything stored, logged or answered from now on (8 characters or longer)."""
    if len(value) >= 8:
        _REGISTERED.add(value)


def scrub(text: str) -> str:
    """`text` with the value of every secret environment variable (and registered secret) replaced by a marker."""
    forms = {form for secret in {*secret_values(), *_REGISTERED} for form in secret_forms(secret)}
    for value in sorted(forms, key=len, reverse=True):
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def _dumps(value: Any) -> str:
    """JSON for a stored column: never fails (odd objects become strings), never holds a secret."""
    return scrub(json.dumps(value, ensure_ascii=False, default=str))


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _object(text: str | None) -> dict[str, Any] | None:
    """A stored JSON object column (a correction); None when empty or not an object."""
    value = _loads(text)
    return value if isinstance(value, dict) else None


def _shared_inputs(inputs: dict[str, Any], traces: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The traces with every input value equal to the run's own input replaced by its key in `run_inputs`."""
    out: list[dict[str, Any]] = []
    for trace in traces:
        read = trace.get("inputs")
        if not isinstance(read, dict):
            out.append(trace)
            continue
        same = [k for k, v in read.items() if k in inputs and inputs[k] == v]
        if not same:
            out.append(trace)
            continue
        out.append({**trace, "inputs": {k: v for k, v in read.items() if k not in same}, "run_inputs": same})
    return out


def _with_inputs(inputs: dict[str, Any], traces: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stored traces with their `run_inputs` references filled back in from the run's inputs."""
    out: list[dict[str, Any]] = []
    for trace in traces:
        keys = trace.get("run_inputs") if isinstance(trace, dict) else None
        if not isinstance(keys, list):
            out.append(trace)
            continue
        rest = {k: v for k, v in trace.items() if k != "run_inputs"}
        rest["inputs"] = {**{k: inputs.get(k) for k in keys}, **(trace.get("inputs") or {})}
        out.append(rest)
    return out


def parse_cursor(cursor: str) -> tuple[float, str]:
    """A `/runs` page cursor (`created:id`, from the previous page's `next`); ValueError when malformed."""
    created, sep, run_id = cursor.partition(":")
    if not sep or not run_id:
        raise ValueError("a cursor is the previous page's `next` value (created:id)")
    value = float(created)
    if not math.isfinite(value):
        raise ValueError("a cursor's time must be a finite number")
    return value, run_id


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
            self._migrate()
            self._conn.commit()

    def _migrate(self) -> None:
        """Bring a store written by an older version up to SCHEMA_VERSION (columns added, nothing dropped). A store
        that cannot be written (read-only file) is still read: its missing columns read as NULL."""
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(feedback)")}
        self._correction = "correction" in columns
        if not self._correction:
            try:
                self._conn.execute("ALTER TABLE feedback ADD COLUMN correction TEXT")
                self._correction = True
            except sqlite3.OperationalError:
                return
        if int(self._conn.execute("PRAGMA user_version").fetchone()[0]) < SCHEMA_VERSION:
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def record(self, run: RunRecord, replace: bool = True) -> None:
        """Store one run (committed at once); with `replace` False, a run already stored under its id is kept."""
        row = (
            run.run_id,
            run.created,
            scrub(run.flow),
            run.artifact_hash,
            run.endpoint,
            _dumps(run.inputs),
            None if run.outputs is None else _dumps(run.outputs),
            _dumps(_shared_inputs(run.inputs, run.traces)),
            run.latency,
            run.calls,
            run.prompt_tokens,
            run.completion_tokens,
            None if run.error is None else scrub(run.error),
        )
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        with self._lock:
            self._conn.execute(f"{verb} INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", row)
            self._conn.commit()

    def add_feedback(
        self, run_id: str, score: float, comment: str | None = None, correction: dict[str, Any] | None = None
    ) -> Feedback:
        """Attach feedback to a stored run, with the corrected output when given (a JSON object of output fields,
        checked by the caller); raises UnknownRunError for an id it does not hold."""
        if not isinstance(score, (int, float)) or isinstance(score, bool) or not math.isfinite(score):
            raise ValueError(f"score must be a finite number, got {score!r}")
        if correction is not None and not isinstance(correction, dict):
            raise ValueError(f"a correction is an object of output fields, got {type(correction).__name__}")
        created = time.time()
        text = None if comment is None else scrub(comment)
        fixed = None if correction is None else _dumps(correction)
        with self._lock:
            if self._conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                raise UnknownRunError(run_id)
            if fixed is not None and not self._correction:
                raise StoreError(f"{self.path} is an older, read-only run store: it cannot hold a correction")
            names, values = "run_id, created, score, comment", [run_id, created, float(score), text]
            if self._correction:
                names, values = names + ", correction", [*values, fixed]
            self._conn.execute(f"INSERT INTO feedback ({names}) VALUES ({', '.join('?' * len(values))})", tuple(values))
            self._conn.commit()
        return Feedback(run_id=run_id, created=created, score=float(score), comment=text, correction=_loads(fixed))

    def get(self, run_id: str) -> dict[str, Any] | None:
        """One run with its feedback, as a JSON-ready dict (its id under `run_id`); None when unknown."""
        with self._lock:
            cursor = self._conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,))
            row = cursor.fetchone()
            names = [d[0] for d in cursor.description]
            fixed = "correction" if self._correction else "NULL"
            notes = self._conn.execute(
                f"SELECT run_id, created, score, comment, {fixed} FROM feedback WHERE run_id = ? ORDER BY id", (run_id,)
            ).fetchall()
        if row is None:
            return None
        data = {"run_id" if name == "id" else name: value for name, value in zip(names, row, strict=True)}
        for key in ("inputs", "outputs", "traces"):
            data[key] = _loads(data[key])
        data["traces"] = _with_inputs(data["inputs"] or {}, data["traces"] or [])
        data["feedback"] = [
            Feedback(run_id=r[0], created=r[1], score=r[2], comment=r[3], correction=_object(r[4])).model_dump()
            for r in notes
        ]
        return data

    def runs(
        self, limit: int = 100, with_feedback_only: bool = False, before: tuple[float, str] | None = None
    ) -> list[dict[str, Any]]:
        """The most recent runs (newest first, older than the cursor `before` when given), as small summaries:
        no inputs, outputs or traces (`input_bytes` says how big the input is), feedback as a count and the last
        score, the error cut at 300 characters. `get` gives one run whole."""
        where: list[str] = []
        params: list[Any] = []
        if with_feedback_only:
            where.append("id IN (SELECT run_id FROM feedback)")
        if before is not None:
            where.append("(created < ? OR (created = ? AND id < ?))")
            params += [before[0], before[0], before[1]]
        query = f"SELECT {_SUMMARY} FROM runs"
        if where:
            query += " WHERE " + " AND ".join(where)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY created DESC, id DESC LIMIT ?", (*params, limit)).fetchall()
        return [dict(zip(_SUMMARY_NAMES, row, strict=True)) for row in rows]

    def full_runs(self, with_feedback_only: bool = False) -> list[dict[str, Any]]:
        """Every stored run whole (as `get` gives it, feedback included), oldest first: what monitoring, fine-tuning
        export and re-optimization read."""
        query = "SELECT id FROM runs"
        if with_feedback_only:
            query += " WHERE id IN (SELECT run_id FROM feedback)"
        try:
            with self._lock:
                ids = [r[0] for r in self._conn.execute(query + " ORDER BY created, id").fetchall()]
            return [run for run in map(self.get, ids) if run is not None]
        except (sqlite3.DatabaseError, json.JSONDecodeError, TypeError) as exc:
            raise StoreError(f"{self.path} is a corrupt run store ({type(exc).__name__}: {exc})") from None

    def record_event(self, kind: str, detail: dict[str, Any]) -> None:
        """Record a service event (an artifact reload, its success or failure) with the time, committed at once."""
        with self._lock:
            self._conn.execute(
                "INSERT INTO events (created, kind, detail) VALUES (?,?,?)", (time.time(), kind, _dumps(detail))
            )
            self._conn.commit()

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The recorded service events, oldest first (only those of `kind` when given)."""
        query, params = "SELECT created, kind, detail FROM events", ()
        if kind is not None:
            query, params = query + " WHERE kind = ?", (kind,)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY id", params).fetchall()
        return [{"created": r[0], "kind": r[1], "detail": _loads(r[2])} for r in rows]

    def count(self) -> int:
        """How many runs are stored."""
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()


def open_store(path: str | Path) -> RunStore:
    """An existing run store opened for reading; StoreError (one line) when the file is missing, is not a SQLite run
    store, is corrupt, or holds no run."""
    target = Path(path)
    if not target.is_file():
        raise StoreError(f"no run store at {target}")
    try:
        store = RunStore(target)
        count = store.count()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{target} is not a readable run store ({exc})") from None
    if count == 0:
        store.close()
        raise StoreError(f"run store {target} holds no runs")
    return store
