"""Persistent SQLite call cache keyed on the exact request, so a repeated call costs nothing."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def default_cache_path() -> Path:
    """`$MICROPROMPTS_CACHE`, else `~/.cache/microprompts/calls.sqlite`."""
    env = os.environ.get("MICROPROMPTS_CACHE")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "microprompts" / "calls.sqlite"


# The canonical JSON of a request: one encoder made once (json.dumps would make one a call); keys are hashed from its
# text, so its options never change (a changed option changes every key: a cold cache).
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


class KeyedSchema(dict[str, Any]):
    """A JSON schema sent on many requests (a node's, the same for every row), made once from its JSON text: it keeps
    that text and its canonical JSON, so a request's key does not encode it again. Never changed once made; a model
    is sent `fresh()`, a plain copy in the text's key order, as a schema built anew for each request would be."""

    def __init__(self, text: str) -> None:
        super().__init__(json.loads(text))
        self.text = text
        self.canonical = _CANONICAL.encode(self)

    def fresh(self) -> dict[str, Any]:
        """A plain copy, for a model (which may change what it is given)."""
        return json.loads(self.text)


def request_key(request: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a request (model identity, parameters, messages, schema, sample)."""
    schema = request.get("schema")
    if isinstance(schema, KeyedSchema) and len(request) > 1 and max(request) == "schema":
        # The same text as encoding it all: "schema" sorts last, so its canonical JSON closes the object.
        rest = _CANONICAL.encode({k: v for k, v in request.items() if k != "schema"})
        blob = f'{rest[:-1]},"schema":{schema.canonical}}}'
    else:
        blob = _CANONICAL.encode(request)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class CacheError(RuntimeError):
    """The call cache file cannot be read (corrupt or not a database); the message says how to recover."""


class CallCache:
    """A key -> JSON reply store in SQLite (WAL), safe to share between threads and processes."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        with self._lock, self._readable():
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, reply TEXT NOT NULL)")
            self._conn.commit()

    @contextmanager
    def _readable(self) -> Iterator[None]:
        """Turn SQLite's corruption errors into one CacheError that names the file and the way out."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise
            raise CacheError(
                f"the call cache {self.path} cannot be read ({exc}): move it aside and run again; "
                "the cache is rebuilt (calls it held are paid again)"
            ) from exc

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored reply for `key`, or None."""
        with self._lock, self._readable():
            row = self._conn.execute("SELECT reply FROM calls WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, reply: dict[str, Any]) -> None:
        """Store a reply; committed at once so a killed run keeps what it paid for."""
        with self._lock, self._readable():
            self._conn.execute("INSERT OR REPLACE INTO calls (key, reply) VALUES (?, ?)", (key, json.dumps(reply)))
            self._conn.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()
