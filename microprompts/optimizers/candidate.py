"""Candidates and lineage: a flow value plus where it came from (parent, operator, address, before/after), and the
record of how the search scored it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from microprompts.flows import Flow

__all__ = ["Candidate", "CandidateStatus", "Mutation", "MutationKind", "Pending", "Record", "trajectory"]

MutationKind = Literal["content", "structure", "graph", "parameters"]
# How the search left a candidate: the seed flow; scored on all of dev after screening; screened out on its minibatch;
# cut off by the budget; scored on all of dev directly (enumeration).
CandidateStatus = Literal["baseline", "promoted", "screened_out", "stopped", "evaluated"]


class Mutation(BaseModel):
    """What one mutation did: the operator, the stable address it touched, and the value before and after."""

    operator: str
    kind: MutationKind
    address: str  # e.g. "classify.sections.task", "classify.params.temperature", "graph.nodes"
    before: Any = None
    after: Any = None
    note: str = ""


@dataclass(frozen=True)
class Candidate:
    """An immutable flow in the search, with its lineage; `id` is the flow's content hash (short)."""

    flow: Flow
    parent: str | None = None
    mutation: Mutation | None = None
    generation: int = 0

    @property
    def id(self) -> str:
        """Short content hash: two candidates with the same flow are the same candidate."""
        return self.flow.content_hash().split(":")[-1][:16]


@dataclass(eq=False)
class Pending:
    """A valid, new child waiting to be scored."""

    candidate: Candidate
    operator: str
    touched: list[str]


@dataclass(eq=False)
class Record:
    """A scored candidate: minibatch and full-dev results, cost, and what made it."""

    candidate: Candidate
    operator: str | None
    touched: list[str] = field(default_factory=list)
    minibatch: float | None = None
    minibatch_n: int = 0
    minibatch_objective: float | None = None
    dev: float | None = None
    tokens_per_row: float | None = None
    objective: float | None = None
    prompt_tokens_per_row: float | None = None  # the prompt's size on dev: what ties go to (the cheaper)
    accepted: bool | None = None  # promoted over its parent on paired dev rows (None: not compared, e.g. the seed)
    holdout: float | None = None  # score on the held-out slice of dev (finalists only)
    holdout_objective: float | None = None
    status: CandidateStatus | None = None  # set once the search is done with it

    @property
    def id(self) -> str:
        """The candidate's id."""
        return self.candidate.id

    @property
    def flow(self) -> Flow:
        """The candidate's flow."""
        return self.candidate.flow


def trajectory(records: Iterable[Record]) -> list[tuple[str, str, float]]:
    """(address, text, score) of the text edits scored so far (full dev, else minibatch), for operators that learn
    from the trajectory (OPRO)."""
    out = []
    for record in records:
        m = record.candidate.mutation
        score = record.dev if record.dev is not None else record.minibatch
        if m is not None and isinstance(m.after, str) and score is not None:
            out.append((m.address, m.after, score))
    return out
