"""Graph-structure mutators: insert a check-and-revise node, remove an unneeded node, split a node, vote.

No optimizer model is needed: each operator rewires the flow by rules that keep every node's data dependencies
(what it reads is written upstream, or is a flow input). Every child is checked with `flow.validate()`, compiled,
and serialized before it is returned; one that fails is dropped.

Declared addresses: `graph.nodes` and `graph.edges` (insert, remove, split), `<node>.inputs` (split: the
original node also reads the notes), `<node>.params.samples` and `<node>.params.temperature` (vote).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import networkx as nx
from langgraph.graph import END, START

from microprompts.evals.evaluate import row_parts
from microprompts.flows import Branch, Flow
from microprompts.flows.address import address_values, is_frozen, node_of
from microprompts.nodes import MicroPrompt, Params
from microprompts.nodes.schema import model_from_schema
from microprompts.optimizers.candidate import Candidate
from microprompts.optimizers.mutators._shared import fresh_name
from microprompts.optimizers.mutators.base import Move, MutationContext, Mutator

__all__ = [
    "InsertCheck",
    "RemoveNode",
    "SplitNode",
    "Vote",
    "graph_mutators",
    "insert_check",
    "remove_node",
    "split_node",
    "vote",
]

GRAPH = ("graph.nodes", "graph.edges")
MAX_NODES = 12  # a graph mutation never grows a flow past this many nodes

CHECK_TASK = """Check a draft and fix it. A previous step wrote the draft ({fields}) from the same inputs, for the \
task below. If the draft is right, return it unchanged; otherwise return the corrected {fields}.

The task:
{task}"""

PLAN_TASK = """Prepare notes for the step below: pick out the facts in the inputs that it needs, and outline in a \
few short lines how to reach its answer. Do not give the answer itself.

The step's task:
{task}"""


def _task(mp: MicroPrompt) -> str:
    section = mp.section("task")
    return section.text if section is not None and section.text else "(not stated)"


def _taken(flow: Flow) -> set[str]:
    """Names a new node or key must avoid: node names, every state key, START and END."""
    keys = {k for n in flow.nodes.values() for k in (*n.reads, *n.writes)} | set(flow.input_keys)
    return set(flow.nodes) | keys | {START, END}


def _insert_nodes(
    nodes: dict[str, Any], new: dict[str, Any], *, after: str | None = None, before: str | None = None
) -> dict[str, Any]:
    """`nodes` with `new` placed just after `after` or just before `before` (insertion order is display order)."""
    out: dict[str, Any] = {}
    for name, node in nodes.items():
        if name == before:
            out.update(new)
        out[name] = node
        if name == after:
            out.update(new)
    return out


def _graph_frozen(ctx: MutationContext) -> bool:
    return any(is_frozen(a, ctx.frozen) for a in GRAPH)


def _derived(flow: Flow, name: str, suffix: str) -> bool:
    """True for a node this module added (`x_check` after `x`, `x_plan` before `x`): not mutated again."""
    return name.endswith(suffix) and name[: -len(suffix)] in flow.nodes


# --- insert a check-and-revise node ------------------------------------------------------------------------
def insert_check(flow: Flow, node: str) -> Flow:
    """`flow` with `<node>_check` after `node`: it reads the node's inputs and outputs and rewrites the outputs.

    The check node takes over the node's outgoing edges and branches, so every successor sees revised outputs.
    """
    mp = flow.nodes[node]
    if not isinstance(mp, MicroPrompt):
        raise TypeError(f"{node!r} is not a micro-prompt")
    name = fresh_name(f"{node}_check", _taken(flow))
    fields = ", ".join(mp.writes)
    inputs = dict(mp.inputs)
    for key, info in mp.output.model_fields.items():
        inputs.setdefault(key, f"The draft {key} to check" + (f": {info.description}" if info.description else "."))
    guidelines = mp.section("guidelines")
    check = MicroPrompt(
        name,
        task=CHECK_TASK.format(fields=fields, task=_task(mp)),
        guidelines=guidelines.text if guidelines is not None and guidelines.text else None,
        inputs=inputs,
        output=mp.output,
        params=Params(**{**mp.params.model_dump(), "samples": 1, "n_examples": None, "temperature": 0.0}),
    ).replace(input_schemas=mp.input_schemas)  # the checked node's typed inputs stay typed
    edges = [(name if a == node else a, b) for a, b in flow.edges] + [(node, name)]
    branches = [Branch(name, b.router, b.mapping) if b.source == node else b for b in flow.branches]
    return flow.evolve(nodes=_insert_nodes(flow.nodes, {name: check}, after=node), edges=edges, branches=branches)


# --- remove a node whose outputs nothing needs ---------------------------------------------------------------
def protected_keys(ctx: MutationContext) -> set[str]:
    """Keys the metric may need: every expected-output field of the training rows."""
    return {k for row in ctx.train for k in row_parts(row)[1]}


def removable(flow: Flow, protected: set[str]) -> list[str]:
    """Micro-prompts whose outputs no node reads, no router can see, and no expected output names.

    Conservative: with no protected keys nothing is removable (the metric's needs are unknown), and a node is
    kept unless every branch's source runs strictly before it (a router may read any key it can see).
    """
    if not protected or len(flow.nodes) < 2:
        return []
    graph = flow.graph()
    out = []
    for mp in flow.micro_prompts():
        keys = set(mp.writes)
        if keys & protected:
            continue
        if any(keys & set(other.reads) for other in flow.nodes.values() if other.name != mp.name):
            continue
        after = nx.descendants(graph, mp.name) | {mp.name}
        if any(b.source in after or mp.name not in nx.descendants(graph, b.source) for b in flow.branches):
            continue
        out.append(mp.name)
    return out


def remove_node(flow: Flow, node: str) -> Flow:
    """`flow` without `node`: its predecessors connect to its successors (or end, when it was last)."""
    succs = [b for a, b in flow.edges if a == node]
    if any(b.source == node for b in flow.branches):
        raise ValueError(f"{node!r} is a branch source")
    succs = succs or [END]
    kept = [(a, b) for a, b in flow.edges if node not in (a, b)]
    bridged = [
        (a, s)
        for a, b in flow.edges
        if b == node and a != node
        for s in succs
        if s != node and not (a == START and s == END)
    ]
    branches = []
    for branch in flow.branches:
        if node in branch.mapping.values():
            if len(succs) != 1:
                raise ValueError(f"{node!r} is a branch target with {len(succs)} successors")
            branch = Branch(
                branch.source, branch.router, {k: succs[0] if v == node else v for k, v in branch.mapping.items()}
            )
        branches.append(branch)
    routed = {b.source for b in branches}
    edges = list(dict.fromkeys(kept + bridged))
    # a bridged edge to END is needed only where its source would otherwise have no way on
    edges = [
        (a, b)
        for a, b in edges
        if (a, b) not in bridged or b != END or (a not in routed and all(x != a or y == END for x, y in edges))
    ]
    nodes = {k: v for k, v in flow.nodes.items() if k != node}
    return flow.evolve(nodes=nodes, edges=edges, branches=branches, last=flow.last if flow.last != node else None)


# --- split a node in two ---------------------------------------------------------------------------------------
def split_node(flow: Flow, node: str) -> Flow:
    """`flow` with `<node>_plan` before `node`: it reads the node's inputs and writes `<node>_notes`, which the node
    then reads too. Edges and branch targets into the node now lead to the plan node."""
    mp = flow.nodes[node]
    if not isinstance(mp, MicroPrompt):
        raise TypeError(f"{node!r} is not a micro-prompt")
    if flow.state is not None:
        raise ValueError("a flow with a user state type cannot take a new state key")
    taken = _taken(flow)
    name = fresh_name(f"{node}_plan", taken)
    key = fresh_name(f"{node}_notes", taken | {name})
    describe = f"Notes for step {node}: the facts it needs from the inputs and a short plan."
    output = model_from_schema(
        {
            "title": f"{name.title().replace('_', '')}Output",
            "type": "object",
            "properties": {key: {"type": "string", "description": describe}},
            "required": [key],
        }
    )
    plan = MicroPrompt(
        name,
        task=PLAN_TASK.format(task=_task(mp)),
        inputs=dict(mp.inputs),
        output=output,
        params=Params(model=mp.params.model, data_format=mp.params.data_format, max_tokens=256),
    ).replace(input_schemas=mp.input_schemas)
    reader = mp.replace(inputs={**mp.inputs, key: describe})
    edges = [(a, name if b == node else b) for a, b in flow.edges] + [(name, node)]
    branches = [
        Branch(b.source, b.router, {k: name if v == node else v for k, v in b.mapping.items()}) for b in flow.branches
    ]
    nodes = _insert_nodes({**flow.nodes, node: reader}, {name: plan}, before=node)
    return flow.evolve(nodes=nodes, edges=edges, branches=branches)


# --- sample k times and vote ---------------------------------------------------------------------------------
def vote(flow: Flow, node: str, k: int, temperature: float = 0.7) -> Flow:
    """`flow` with `node` sampled `k` times and the majority output kept (temperature raised from 0 to vary)."""
    mp = flow.nodes[node]
    if not isinstance(mp, MicroPrompt):
        raise TypeError(f"{node!r} is not a micro-prompt")
    return flow.replace_node(mp.with_params(samples=k, temperature=mp.params.temperature or temperature))


# --- the operators ---------------------------------------------------------------------------------------------
class _GraphMutator(Mutator):
    """Shared shape: the drafts are the eligible nodes in an order drawn with the context's rng, each applied."""

    name = "graph"
    kind = "graph"
    needs_evaluation = False  # rules over the graph alone: the engine need not run the parent first

    def addresses(self, flow: Flow) -> list[str]:
        """`graph.nodes` and `graph.edges` when the flow has a micro-prompt to work on."""
        return list(GRAPH) if flow.micro_prompts() else []

    def eligible(self, flow: Flow, ctx: MutationContext) -> list[str]:
        """Nodes this operator may apply to, given the frozen parts."""
        raise NotImplementedError

    def apply(self, flow: Flow, node: str, ctx: MutationContext) -> Move:
        """The edit of `node`; may raise ValueError/TypeError when the node cannot take the change."""
        raise NotImplementedError

    def drafts(self, candidate: Candidate, ctx: MutationContext, n: int) -> Iterable[Move]:
        """The eligible nodes in an order drawn with `ctx.rng`, each applied; nodes that cannot take it are skipped."""
        flow = candidate.flow
        nodes = self.eligible(flow, ctx)
        return self._applied(flow, ctx.rng.sample(nodes, len(nodes)), ctx)

    def _applied(self, flow: Flow, nodes: list[str], ctx: MutationContext) -> Iterator[Move]:
        for node in nodes:
            try:
                yield self.apply(flow, node, ctx)
            except (ValueError, TypeError, KeyError):
                continue

    def _rewired(self, flow: Flow, child: Flow, note: str) -> Move:
        return Move("graph.nodes", list(flow.nodes), list(child.nodes), lambda: child, note=note)


class InsertCheck(_GraphMutator):
    """Insert a check-and-revise micro-prompt after a node (self-refine as a graph edit)."""

    name = "insert_check"

    def eligible(self, flow: Flow, ctx: MutationContext) -> list[str]:
        """Micro-prompts with no check node yet (and not check nodes themselves), while the graph may grow."""
        if _graph_frozen(ctx) or len(flow.nodes) >= MAX_NODES:
            return []
        return [
            mp.name
            for mp in flow.micro_prompts()
            if not _derived(flow, mp.name, "_check") and f"{mp.name}_check" not in flow.nodes
        ]

    def apply(self, flow: Flow, node: str, ctx: MutationContext) -> Move:
        """A check-and-revise node after `node`."""
        return self._rewired(flow, insert_check(flow, node), f"inserted a check-and-revise node after {node}")


class RemoveNode(_GraphMutator):
    """Remove a micro-prompt whose outputs nothing reads and no expected output names (saves its calls)."""

    name = "remove_node"

    def eligible(self, flow: Flow, ctx: MutationContext) -> list[str]:
        """Removable micro-prompts with no frozen part."""
        if _graph_frozen(ctx):
            return []
        names = removable(flow, protected_keys(ctx))
        values = address_values(flow)
        return [n for n in names if not any(node_of(a) == n and is_frozen(a, ctx.frozen) for a in values)]

    def apply(self, flow: Flow, node: str, ctx: MutationContext) -> Move:
        """`flow` without `node`."""
        return self._rewired(flow, remove_node(flow, node), f"removed {node}, whose outputs nothing reads")


class SplitNode(_GraphMutator):
    """Split a node in two: a micro-prompt that extracts facts and plans, then the original reading its notes."""

    name = "split_node"

    def addresses(self, flow: Flow) -> list[str]:
        """The graph, and the inputs of every node that could be split."""
        return super().addresses(flow) + [f"{mp.name}.inputs" for mp in flow.micro_prompts()]

    def eligible(self, flow: Flow, ctx: MutationContext) -> list[str]:
        """Micro-prompts with unfrozen inputs and no plan node yet, while the graph may grow and take a key."""
        if _graph_frozen(ctx) or flow.state is not None or len(flow.nodes) >= MAX_NODES:
            return []
        return [
            mp.name
            for mp in flow.micro_prompts()
            if not is_frozen(f"{mp.name}.inputs", ctx.frozen)
            and not _derived(flow, mp.name, "_plan")
            and f"{mp.name}_plan" not in flow.nodes
        ]

    def apply(self, flow: Flow, node: str, ctx: MutationContext) -> Move:
        """A planning node before `node`."""
        return self._rewired(flow, split_node(flow, node), f"split {node} into a planning step and {node}")


class Vote(_GraphMutator):
    """Sample a node k times at a temperature above 0 and keep the majority output (self-consistency)."""

    name = "vote"

    def __init__(self, ks: Sequence[int] = (3, 5), temperature: float = 0.7) -> None:
        self.ks = tuple(ks)
        self.temperature = temperature

    def addresses(self, flow: Flow) -> list[str]:
        """Each micro-prompt's sample count and temperature."""
        return [f"{mp.name}.params.{p}" for mp in flow.micro_prompts() for p in ("samples", "temperature")]

    def eligible(self, flow: Flow, ctx: MutationContext) -> list[str]:
        """Micro-prompts sampled once whose sample count (and, at temperature 0, temperature) may change."""
        out = []
        for mp in flow.micro_prompts():
            if mp.params.samples > 1 or is_frozen(f"{mp.name}.params.samples", ctx.frozen):
                continue
            if mp.params.temperature == 0 and is_frozen(f"{mp.name}.params.temperature", ctx.frozen):
                continue  # k identical samples would vote for nothing
            out.append(mp.name)
        return out

    def apply(self, flow: Flow, node: str, ctx: MutationContext) -> Move:
        """`node` sampled k times (k drawn with `ctx.rng`)."""
        mp = flow.nodes[node]
        assert isinstance(mp, MicroPrompt)
        k = ctx.rng.choice(self.ks)
        child = vote(flow, node, k, self.temperature)
        after = child.nodes[node]
        assert isinstance(after, MicroPrompt)
        note = f"sample {node} {k} times and vote; temperature {mp.params.temperature} -> {after.params.temperature}"
        return Move(f"{node}.params.samples", mp.params.samples, k, lambda: child, note=note)


def graph_mutators() -> list[Mutator]:
    """The graph-structure operators with default settings."""
    return [InsertCheck(), RemoveNode(), SplitNode(), Vote()]
