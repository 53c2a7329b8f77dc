"""`Flow`: how micro-prompts and function nodes connect; an immutable value that compiles to LangGraph."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

import networkx as nx
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from typing_extensions import TypedDict

from microprompts.flows.address import Address
from microprompts.flows.adopt import graph_parts
from microprompts.flows.artifact import flow_parts, flow_to_dict, read_artifact, save_flow, verify_soft_files
from microprompts.flows.edit import get_part, set_part
from microprompts.flows.state_types import input_problems, input_types, key_types
from microprompts.flows.structure import Branch, FlowShape, Node, RouterError
from microprompts.flows.validate import control_graph, dependency_graph, validate_flow
from microprompts.models import ModelCaller, ModelLike
from microprompts.nodes import MicroPrompt, Runtime
from microprompts.nodes.runtime import recorder_of

__all__ = ["Branch", "Flow", "Node", "RouterError"]


class Flow(FlowShape):
    """A graph of nodes; builder methods return a new Flow, so a flow is a value the optimizer can mutate."""

    def evolve(self, **changes: Any) -> Flow:
        """A copy with some fields replaced."""
        current: dict[str, Any] = dict(
            name=self.name,
            state=self.state,
            inputs=self.inputs,
            nodes=self.nodes,
            edges=self.edges,
            branches=self.branches,
            last=self.last,
            soft_dir=self.soft_dir,
        )
        current.update(changes)
        return Flow(**current)

    # --- building --------------------------------------------------------------------------------
    def add(self, node: Node) -> Flow:
        """Add a node (no edges)."""
        if node.name in self.nodes:
            raise ValueError(f"flow {self.name!r} already has a node named {node.name!r}")
        if node.name in (START, END):
            raise ValueError(f"{node.name!r} is reserved")
        return self.evolve(nodes={**self.nodes, node.name: node}, last=node.name)

    def then(self, node: Node) -> Flow:
        """Add a node after the last one added (after START for the first): a chain."""
        previous = self.last or START
        return self.add(node).edge(previous, node.name)

    def edge(self, source: str, target: str) -> Flow:
        """Add a plain edge."""
        return self.evolve(edges=self.edges + ((source, target),))

    def branch(self, source: str, router: Callable[..., Any], mapping: dict[str, str]) -> Flow:
        """Add a conditional edge: `router(state)` returns a label of `mapping`."""
        if not callable(router):
            raise TypeError(f"branch from {source!r}: router must be callable")
        return self.evolve(branches=self.branches + (Branch(source, router, dict(mapping)),))

    def replace_node(self, node: Node) -> Flow:
        """The same flow with one node swapped for a new version of the same name."""
        if node.name not in self.nodes:
            raise KeyError(f"flow {self.name!r} has no node {node.name!r}")
        return self.evolve(nodes={**self.nodes, node.name: node})

    def get(self, address: str | Address) -> Any:
        """The part at an address (see `microprompts.flows.address`): a Section or None, a parameter, the examples..."""
        return get_part(self, address)

    def set(self, address: str | Address, value: Any) -> Flow:
        """A copy with the part at an address set to `value` (None removes a section): how optimizers edit flows."""
        return self.replace_node(set_part(self, address, value))

    def graph(self) -> nx.DiGraph:
        """The control graph as networkx (START, END, nodes, edges and branch targets)."""
        return control_graph(self)

    def dependencies(self) -> nx.DiGraph:
        """The data-dependency graph as networkx: writer -> reader, labelled by key."""
        return dependency_graph(self)

    def validate(self) -> Flow:
        """Check the flow; raises FlowValidationError with every problem. Returns self for chaining."""
        validate_flow(self)
        return self

    # --- compiling -------------------------------------------------------------------------------
    def state_schema(self) -> type:
        """The user's state type, or a TypedDict of every key the flow reads or writes, typed as `key_types` says
        (typed inputs as declared, untyped micro-prompt inputs `str`, outputs as their output fields)."""
        if self.state is not None:
            return self.state
        types = key_types(self)
        keys = list(self.input_keys) + [k for k in self.output_keys if k not in self.input_keys]
        for node in self.nodes.values():
            keys += [k for k in node.reads if k not in keys]
        # typing_extensions' TypedDict, so pydantic (and LangGraph's input JSON schema) accept it on Python < 3.12;
        # built from names known only at run time, which checkers cannot follow.
        make: Any = TypedDict
        return make(f"{self.name.title().replace('_', '')}State", {k: types.get(k, Any) for k in keys}, total=False)

    def input_types(self) -> dict[str, Any]:
        """The type of each flow input (see `microprompts.flows.state_types.input_types`)."""
        return input_types(self)

    def input_problems(self, inputs: dict[str, Any]) -> list[str]:
        """One line per given input whose value does not match its type: a row's check before it runs."""
        return input_problems(self, inputs)

    def compile(
        self, model: ModelLike | None = None, caller: ModelCaller | None = None, **compile_kwargs: Any
    ) -> CompiledStateGraph:
        """Validate and build a LangGraph `CompiledStateGraph`; `model` is the default for every node. Soft-prompt
        files are read from `soft_dir` (the artifact's folder) when a node first runs."""
        self.validate()
        runtime = Runtime(model=model, caller=caller, soft_dir=self.soft_dir)
        builder = StateGraph(self.state_schema())
        for node in self.nodes.values():
            builder.add_node(node.name, _node_callable(node, runtime))
        for source, target in self.edges:
            builder.add_edge(source, target)
        for branch in self.branches:
            path_map: dict[Hashable, str] = {label: node for label, node in branch.mapping.items()}
            builder.add_conditional_edges(branch.source, _route(branch), path_map=path_map)
        routed = {b.source for b in self.branches} | {a for a, _ in self.edges}
        for name in self.nodes:
            if name not in routed:
                builder.add_edge(name, END)
        return builder.compile(name=self.name, **compile_kwargs)

    def draw_mermaid(self) -> str:
        """Mermaid text of the compiled graph (offline; no image rendering)."""
        return self.compile().get_graph().draw_mermaid()

    # --- artifacts -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON artifact (versioned, content-hashed, no code, no secrets)."""
        return flow_to_dict(self)

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], allow: Sequence[str] | None = None, soft_dir: str | Path | None = None
    ) -> Flow:
        """Rebuild a flow from its artifact; function nodes import only from allowed modules. With `soft_dir` (the
        folder its soft-prompt files lie in), every file a node names is checked against its SHA-256 now."""
        parts = flow_parts(data, allow)
        if soft_dir is None:
            return cls(**parts)
        folder = str(Path(soft_dir).resolve())
        verify_soft_files(parts["nodes"].values(), folder)
        return cls(**parts, soft_dir=folder)

    def save(self, path: str | Path) -> str:
        """Write the artifact atomically, its nodes' soft-prompt files copied (verified) beside it first; returns
        its content hash."""
        return save_flow(self, path)

    @classmethod
    def load(cls, path: str | Path, allow: Sequence[str] | None = None) -> Flow:
        """Read an artifact written by `save`; soft-prompt files are checked, and later read, beside it."""
        return cls.from_dict(read_artifact(path), allow, soft_dir=Path(path).resolve().parent)

    @classmethod
    def from_graph(cls, builder: StateGraph, name: str | None = None) -> Flow:
        """Adopt an existing LangGraph `StateGraph` whose nodes include MicroPrompts."""
        return cls(**graph_parts(builder, name))

    def content_hash(self) -> str:
        """The artifact's content hash: equal for flows that behave the same."""
        return self.to_dict()["content_hash"]


def _node_callable(node: Node, runtime: Runtime) -> Callable[..., dict[str, Any]]:
    if isinstance(node, MicroPrompt):

        def run_prompt(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
            return node.run(state, runtime, recorder_of(config))

        run_prompt.__name__ = node.name
        return run_prompt

    def run_function(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        return node.run(state, recorder_of(config))

    run_function.__name__ = node.name
    return run_function


def _route(branch: Branch) -> Callable[[dict[str, Any]], str]:
    def route(state: dict[str, Any]) -> str:
        label = branch.router(state)
        if label not in branch.mapping:
            raise RouterError(
                f"router after {branch.source!r} returned {label!r}; expected one of {sorted(branch.mapping)}"
            )
        return label

    return route
