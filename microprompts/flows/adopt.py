"""Adopting an existing LangGraph `StateGraph` whose nodes include MicroPrompts, so users keep their graph."""

from __future__ import annotations

from typing import Any

from langgraph.graph import StateGraph

from microprompts.flows.structure import Branch
from microprompts.nodes import FunctionNode, MicroPrompt


class AdoptError(ValueError):
    """A StateGraph that cannot be adopted (a node or branch we cannot represent)."""


def _callable_of(spec: Any) -> Any:
    """The plain function behind a LangGraph node or branch spec (a RunnableCallable wraps it)."""
    runnable = getattr(spec, "runnable", spec)
    return getattr(runnable, "func", None) or getattr(runnable, "afunc", None) or runnable


def graph_parts(builder: StateGraph, name: str | None = None) -> dict[str, Any]:
    """A flow's parts (the keyword arguments of `Flow`) from a LangGraph `StateGraph`. Nodes that are MicroPrompts
    stay themselves; other callables become FunctionNodes (by import path)."""
    if not isinstance(builder, StateGraph):
        raise AdoptError(f"expected a langgraph StateGraph, got {type(builder).__name__}")
    nodes: dict[str, MicroPrompt | FunctionNode] = {}
    for node_name, spec in builder.nodes.items():
        fn = _callable_of(spec)
        if isinstance(fn, (MicroPrompt, FunctionNode)):
            node = fn if fn.name == node_name else fn.model_copy(update={"name": node_name})
        elif callable(fn):
            node = FunctionNode(node_name, fn)
        else:
            raise AdoptError(f"node {node_name!r} is not a callable we can adopt")
        nodes[node_name] = node
    branches = []
    for source, by_name in builder.branches.items():
        for spec in by_name.values():
            router = _callable_of(spec.path)
            ends = spec.ends
            if not ends:
                raise AdoptError(f"branch from {source!r} has no path map; pass one to add_conditional_edges")
            branches.append(Branch(source, router, {str(k): str(v) for k, v in ends.items()}))
    schema = builder.state_schema if getattr(builder, "state_schema", None) is not dict else None
    return {
        "name": name or "adopted",
        "state": schema,
        "nodes": nodes,
        "edges": sorted(builder.edges),
        "branches": branches,
    }
