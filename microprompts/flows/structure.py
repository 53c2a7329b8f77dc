"""The parts of a flow as plain data: nodes, edges, branches and what the flow reads and writes.

`FlowShape` holds them and answers questions about them; `Flow` adds building, compiling and artifacts. Validation
and the artifact format work on a `FlowShape`, so they need not import `Flow`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from microprompts.nodes import FunctionNode, MicroPrompt

__all__ = ["Branch", "FlowShape", "Node", "RouterError"]

Node = MicroPrompt | FunctionNode


class RouterError(ValueError):
    """A router returned a label its branch does not map."""


@dataclass(frozen=True)
class Branch:
    """A conditional edge: after `source`, `router(state)` picks a label, `mapping` turns it into a node."""

    source: str
    router: Callable[..., Any]
    mapping: dict[str, str]


@dataclass(frozen=True)
class FlowShape:
    """A flow's parts (see module docstring); immutable."""

    name: str
    state: type | None = None
    inputs: tuple[str, ...] | None = None
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: tuple[tuple[str, str], ...] = ()
    branches: tuple[Branch, ...] = ()
    last: str | None = None
    soft_dir: str | None = None  # the folder its nodes' soft-prompt files lie in (not in the artifact: where it is)

    def __init__(
        self,
        name: str,
        state: type | None = None,
        inputs: Sequence[str] | None = None,
        nodes: dict[str, Node] | None = None,
        edges: Sequence[tuple[str, str]] = (),
        branches: Sequence[Branch] = (),
        last: str | None = None,
        soft_dir: str | None = None,
    ) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "state", state)
        object.__setattr__(self, "inputs", tuple(inputs) if inputs is not None else None)
        object.__setattr__(self, "nodes", dict(nodes or {}))
        object.__setattr__(self, "edges", tuple((a, b) for a, b in edges))
        object.__setattr__(self, "branches", tuple(branches))
        object.__setattr__(self, "last", last)
        object.__setattr__(self, "soft_dir", None if soft_dir is None else str(soft_dir))

    # --- what it reads and writes ---------------------------------------------------------------
    @property
    def input_keys(self) -> tuple[str, ...]:
        """The keys a caller must provide: declared, else what nodes read that no node writes."""
        if self.inputs is not None:
            return self.inputs
        written = {k for n in self.nodes.values() for k in n.writes}
        seen: dict[str, None] = {}
        for node in self.nodes.values():
            for key in node.reads:
                if key not in written:
                    seen[key] = None
        return tuple(seen)

    @property
    def output_keys(self) -> tuple[str, ...]:
        """Every key a node writes: the prediction a metric sees."""
        seen: dict[str, None] = {}
        for node in self.nodes.values():
            for key in node.writes:
                seen[key] = None
        return tuple(seen)

    def micro_prompts(self) -> list[MicroPrompt]:
        """The micro-prompt nodes, in insertion order."""
        return [n for n in self.nodes.values() if isinstance(n, MicroPrompt)]
