"""Candidates and lineage: a flow value plus where it came from (parent, operator, address, before/after)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from microprompts.flows import Flow

MutationKind = Literal["content", "structure", "graph", "parameters"]


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
