"""The run journal: append-only JSONL, one fsynced line per event, replayed on resume to check the run lines up.

Events are typed (`CandidateEvent`, `SkippedEvent`, `RejectedEvent`, `FinalEvent`) and stored as plain JSON objects
with their fields in declaration order after ``seq``; `parse_event` reads one back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from microprompts.models.phases import phase
from microprompts.optimizers.budget import Charge
from microprompts.optimizers.candidate import CandidateStatus, MutationKind, Record

__all__ = [
    "CandidateEvent",
    "FinalEvent",
    "Journal",
    "JournalEvent",
    "JsonlFile",
    "RejectedEvent",
    "ResumeError",
    "SkippedEvent",
    "parse_event",
    "read_jsonl",
]


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
        with phase("journaling"):
            line = json.dumps(obj, ensure_ascii=False, sort_keys=True, default=str) + "\n"
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())


class CandidateEvent(BaseModel):
    """A candidate the search is done with: what made it, how it scored, and the run's spend at that point."""

    event: Literal["candidate"] = "candidate"
    id: str
    parent: str | None
    generation: int
    operator: str | None
    kind: MutationKind | None
    mutation: dict[str, Any] | None  # the Mutation as JSON
    touched: list[str]
    status: CandidateStatus
    minibatch: float | None
    minibatch_n: int
    dev: float | None
    dev_n: int
    tokens_per_row: float | None
    objective: float | None
    accepted: bool | None = None  # promoted over its parent on paired dev rows (None: not compared)
    calls: int  # task-model calls charged so far
    optimizer_calls: int
    tokens: int  # tokens charged so far, both models
    elapsed: float  # seconds since the run started (resumed runs included)

    @classmethod
    def of(cls, record: Record, dev_n: int, spent: Charge, seconds: float) -> CandidateEvent:
        """The event of a record whose status is set, on a dev set of `dev_n` rows, after the run `spent` that much
        in `seconds`; scores rounded to 6 places, seconds to 3."""
        m = record.candidate.mutation
        if record.status is None:
            raise ValueError(f"candidate {record.id} has no status yet")
        return cls(
            id=record.id,
            parent=record.candidate.parent,
            generation=record.candidate.generation,
            operator=record.operator,
            kind=m.kind if m else None,
            mutation=m.model_dump(mode="json") if m else None,
            touched=record.touched,
            status=record.status,
            minibatch=_round(record.minibatch),
            minibatch_n=record.minibatch_n,
            dev=_round(record.dev),
            dev_n=dev_n if record.dev is not None else 0,
            tokens_per_row=_round(record.tokens_per_row),
            objective=_round(record.objective),
            accepted=record.accepted,
            calls=spent.task_calls,
            optimizer_calls=spent.optimizer_calls,
            tokens=spent.task_tokens + spent.optimizer_tokens,
            elapsed=round(seconds, 3),
        )


class SkippedEvent(BaseModel):
    """A child the calls left could not pay for: not scored, and it may be proposed again."""

    event: Literal["skipped"] = "skipped"
    id: str
    parent: str | None
    operator: str | None
    reason: str


class RejectedEvent(BaseModel):
    """A proposal that was invalid (it failed to compile, touched a frozen part, or its operator raised)."""

    event: Literal["rejected"] = "rejected"
    parent: str
    operator: str
    reason: str


class FinalEvent(BaseModel):
    """How the winner was chosen: the finalists re-scored on the held-out rows (none was selected on them), each with
    its dev and held-out score and prompt size; `id` is the winner."""

    event: Literal["final"] = "final"
    id: str
    holdout_n: int
    finalists: list[dict[str, Any]]
    reason: str


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


JournalEvent = Annotated[CandidateEvent | SkippedEvent | RejectedEvent | FinalEvent, Field(discriminator="event")]
_EVENT: TypeAdapter[JournalEvent] = TypeAdapter(JournalEvent)


def parse_event(entry: dict[str, Any]) -> CandidateEvent | SkippedEvent | RejectedEvent | FinalEvent:
    """The typed event of a journal entry (its ``seq`` aside), for reading a run directory's journal."""
    return _EVENT.validate_python(entry)


class Journal:
    """Numbered events (`seq`); on resume, events already journaled are checked against the replay, not rewritten."""

    def __init__(self, path: Path | None, resume: bool) -> None:
        self.file = JsonlFile(path, resume)
        self.entries: list[dict[str, Any]] = []

    @property
    def replaying(self) -> bool:
        """True while the run is retracing events already in the journal."""
        return len(self.entries) < len(self.file.existing)

    def append(self, event: CandidateEvent | SkippedEvent | RejectedEvent | FinalEvent) -> dict[str, Any]:
        """Record an event; returns the stored entry (the original one when replaying)."""
        seq = len(self.entries)
        entry = {"seq": seq, **json.loads(json.dumps(event.model_dump(), default=str))}
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
