"""Graph checks before compiling, on a networkx view: names, reachability, exits, and data dependencies."""

from __future__ import annotations

import networkx as nx
from langgraph.graph import END, START

from microprompts.flows.state_types import input_type_conflicts
from microprompts.flows.structure import FlowShape
from microprompts.nodes.itemize import itemize_problems


class FlowValidationError(ValueError):
    """A flow that cannot run as drawn; the message names every problem found."""


def control_graph(flow: FlowShape) -> nx.DiGraph:
    """Nodes and control edges (plain edges and branch targets), with START and END; implicit ends added."""
    graph = nx.DiGraph()
    graph.add_nodes_from([START, END])
    graph.add_nodes_from(flow.nodes)
    graph.add_edges_from(flow.edges, kind="edge")
    for branch in flow.branches:
        for label, target in branch.mapping.items():
            graph.add_edge(branch.source, target, kind="branch", label=label)
    for name in flow.nodes:
        if graph.out_degree(name) == 0:
            graph.add_edge(name, END, kind="implicit")
    return graph


def dependency_graph(flow: FlowShape) -> nx.DiGraph:
    """Data dependencies: an edge writer -> reader for each state key one node writes and another reads."""
    graph = nx.DiGraph()
    graph.add_nodes_from(flow.nodes)
    for reader in flow.nodes.values():
        for key in reader.reads:
            for writer in flow.nodes.values():
                if writer.name != reader.name and key in writer.writes:
                    graph.add_edge(writer.name, reader.name, key=key)
    return graph


def validate_flow(flow: FlowShape) -> None:
    """Raise FlowValidationError listing every problem, or return quietly."""
    problems = _name_problems(flow)
    if not problems:
        graph = control_graph(flow)
        problems += _reach_problems(flow, graph)
        if not problems:
            problems += _data_problems(flow, graph)
    problems += _state_problems(flow)
    problems += input_type_conflicts(flow)
    problems += _param_problems(flow)
    if problems:
        raise FlowValidationError(f"flow {flow.name!r} is invalid: " + "; ".join(problems))


def _name_problems(flow: FlowShape) -> list[str]:
    known = set(flow.nodes) | {START, END}
    problems = []
    if not flow.nodes:
        problems.append("it has no nodes")
    for a, b in flow.edges:
        for end in (a, b):
            if end not in known:
                problems.append(f"edge {a} -> {b} names unknown node {end!r}")
        if b == START or a == END:
            problems.append(f"edge {a} -> {b} runs backwards through START/END")
    for branch in flow.branches:
        if branch.source not in flow.nodes:
            problems.append(f"branch from unknown node {branch.source!r}")
        for label, target in branch.mapping.items():
            if target not in known or target == START:
                problems.append(f"branch {branch.source!r} label {label!r} targets unknown node {target!r}")
    if flow.nodes and not any(a == START for a, _ in flow.edges):
        problems.append("no edge from START")
    return problems


def state_keys(state: type | None) -> set[str] | None:
    """The keys a user's state type declares (TypedDict, pydantic model or dataclass); None when unknown."""
    if state is None:
        return None
    fields = getattr(state, "model_fields", None) or getattr(state, "__dataclass_fields__", None)
    if isinstance(fields, dict):
        return set(fields)
    keys = {k for cls in getattr(state, "__mro__", ()) for k in getattr(cls, "__annotations__", {})}
    return keys or None


def _param_problems(flow: FlowShape) -> list[str]:
    """Parameters a node cannot honour as set: an itemized field that is not a whole number, or beside examples."""
    return [
        problem
        for mp in flow.micro_prompts()
        if mp.params.itemize
        for problem in itemize_problems(
            mp.name, mp.output, mp.params.itemize, bool(mp.shown_examples()), mp.params.calibration is not None
        )
    ]


def _state_problems(flow: FlowShape) -> list[str]:
    """LangGraph silently drops a write to, and never fills a read of, a key the state schema lacks."""
    keys = state_keys(flow.state)
    if keys is None:
        return []
    name = getattr(flow.state, "__name__", "the state")
    problems = []
    for node in flow.nodes.values():
        for verb, wanted in (("reads", node.reads), ("writes", node.writes)):
            missing = [k for k in wanted if k not in keys]
            if missing:
                problems.append(f"node {node.name!r} {verb} {missing}, which the state schema {name} does not declare")
    return problems


def _reach_problems(flow: FlowShape, graph: nx.DiGraph) -> list[str]:
    problems = []
    reachable = nx.descendants(graph, START)
    for name in flow.nodes:
        if name not in reachable:
            problems.append(f"node {name!r} is unreachable from START")
    can_end = nx.ancestors(graph, END)
    stuck = [n for n in flow.nodes if n in reachable and n not in can_end]
    for component in nx.strongly_connected_components(graph.subgraph(stuck)):
        cycle = sorted(component)
        if len(cycle) == 1 and not graph.has_edge(cycle[0], cycle[0]):
            continue  # a node that only leads into a closed cycle: that cycle is reported
        problems.append(f"cycle {' -> '.join(cycle + cycle[:1])} has no way out to END")
    return problems


def _data_problems(flow: FlowShape, graph: nx.DiGraph) -> list[str]:
    problems = []
    inputs = set(flow.input_keys)
    for node in flow.nodes.values():
        upstream = nx.ancestors(graph, node.name)
        if nx.has_path(graph, node.name, node.name) if graph.has_edge(node.name, node.name) else False:
            upstream.add(node.name)
        for key in node.reads:
            if key in inputs:
                continue
            if any(key in flow.nodes[u].writes for u in upstream if u in flow.nodes):
                continue
            later = [w.name for w in flow.nodes.values() if key in w.writes]
            if later:
                problems.append(f"node {node.name!r} reads {key!r}, which only {later} write(s), after it runs")
            else:
                problems.append(f"node {node.name!r} reads {key!r}, which no upstream node or flow input provides")
    return problems
