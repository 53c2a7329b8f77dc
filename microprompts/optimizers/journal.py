"""The run journal: append-only JSONL, one fsynced line per event, replayed on resume to check the run lines up."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["Journal", "JsonlFile", "ResumeError", "read_jsonl"]


class ResumeError(ValueError):
    """A resumed run that does not retrace the journal it resumes (different flow, data, seed or code)."""


def read_jsonl(path: Path, repair: bool = False) -> list[dict[str, Any]]:
    """The objects of a JSONL file; a torn last line (a killed writer) is dropped, and cut off when `repair`."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    out: list[dict[str, Any]] = []
    good_end = 0
    position = 0
    for line in data.split(b"\n"):
        end = position + len(line) + 1
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                if end < len(data):
                    raise ResumeError(f"{path} is corrupted in the middle (byte {position}); cannot resume") from None
                break
            good_end = min(end, len(data))
        position = end
    if repair and good_end < len(data):
        with open(path, "r+b") as fh:
            fh.truncate(good_end)
            if good_end and not data[:good_end].endswith(b"\n"):
                fh.seek(good_end)
                fh.write(b"\n")
    return out


class JsonlFile:
    """Appends JSON lines durably (flush + fsync per line); `None` path keeps nothing on disk."""

    def __init__(self, path: Path | None, resume: bool) -> None:
        self.path = path
        self.existing: list[dict[str, Any]] = []
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        if resume:
            self.existing = read_jsonl(path, repair=True)
        else:
            path.write_text("", encoding="utf-8")

    def append(self, obj: dict[str, Any]) -> None:
        """Write one line and make it durable before returning."""
        if self.path is None:
            return
        line = json.dumps(obj, ensure_ascii=False, sort_keys=True, default=str) + "\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())


class Journal:
    """Numbered events (`seq`); on resume, events already journaled are checked against the replay, not rewritten."""

    def __init__(self, path: Path | None, resume: bool) -> None:
        self.file = JsonlFile(path, resume)
        self.entries: list[dict[str, Any]] = []

    @property
    def replaying(self) -> bool:
        """True while the run is retracing events already in the journal."""
        return len(self.entries) < len(self.file.existing)

    def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Record an event; returns the stored entry (the original one when replaying)."""
        seq = len(self.entries)
        entry = {"seq": seq, **entry}
        if seq < len(self.file.existing):
            old = self.file.existing[seq]
            if old.get("event") != entry.get("event") or old.get("id") != entry.get("id"):
                raise ResumeError(
                    f"the resumed run diverges from its journal at entry {seq}: journal has "
                    f"{old.get('event')} {old.get('id')}, the run made {entry.get('event')} {entry.get('id')} "
                    "(was the flow, the data, the seed or the code changed?)"
                )
            entry = old
        else:
            self.file.append(entry)
        self.entries.append(entry)
        return entry

    def last_elapsed(self) -> float:
        """Seconds the journaled part of the run took (for the seconds budget of a resumed run)."""
        for entry in reversed(self.file.existing):
            if "elapsed" in entry:
                return float(entry["elapsed"])
        return 0.0
