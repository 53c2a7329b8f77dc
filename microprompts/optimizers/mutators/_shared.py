"""Helpers shared by the model-based content mutators and the graph mutators: freezing, ordering, checking."""

from __future__ import annotations

import networkx as nx
from langgraph.graph import END, START

from microprompts.flows import Flow
from microprompts.models import ModelCaller
from microprompts.nodes import MicroPrompt

__all__ = ["checked", "fresh_name", "micro_prompts_in_order", "node_order"]


def node_order(flow: Flow) -> list[str]:
    """The flow's nodes in run order: topological when the control graph is acyclic, else breadth-first.

    Ties keep insertion order, so the order is deterministic for a given flow.
    """
    graph = flow.graph()
    rank = {name: i for i, name in enumerate(flow.nodes)}
    inner = graph.subgraph(flow.nodes).copy()
    if nx.is_directed_acyclic_graph(inner):
        return list(nx.lexicographical_topological_sort(inner, key=lambda n: rank[n]))
    seen: list[str] = []
    for _, target in nx.bfs_edges(graph, START, sort_neighbors=lambda ns: sorted(ns, key=lambda n: rank.get(n, -1))):
        if target != END and target not in seen:
            seen.append(target)
    seen += [n for n in flow.nodes if n not in seen]
    return seen


def micro_prompts_in_order(flow: Flow) -> list[MicroPrompt]:
    """The flow's micro-prompt nodes in run order."""
    return [node for n in node_order(flow) if isinstance(node := flow.nodes[n], MicroPrompt)]


def checked(flow: Flow) -> Flow | None:
    """`flow` when it validates, compiles to LangGraph and serializes to an artifact; else None.

    Compiling uses a cache-less caller so that checking a child never touches the user's call cache.
    """
    try:
        flow.validate()
        flow.compile(caller=ModelCaller(cache=None))
        flow.to_dict()
    except Exception:  # noqa: BLE001 - any failure means the child is dropped, as the contract says
        return None
    return flow


def fresh_name(base: str, taken: set[str]) -> str:
    """`base`, or `base_2`, `base_3`… : the first that is not in `taken`."""
    if base not in taken:
        return base
    i = 2
    while f"{base}_{i}" in taken:
        i += 1
    return f"{base}_{i}"
