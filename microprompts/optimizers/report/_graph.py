"""A flow's control graph drawn locally (networkx for the graph and its edges, matplotlib for the page) as inline SVG:
layers from START down to END, micro-prompts and function nodes told apart, changed, added and removed nodes marked."""

from __future__ import annotations

from typing import Any

import networkx as nx
from langgraph.graph import END, START
from matplotlib.axes import Axes

from microprompts.flows import Flow
from microprompts.nodes import MicroPrompt
from microprompts.optimizers.report._plots import new_figure, svg_of

__all__ = ["graph_svg", "layered_positions"]

FILL = {"micro_prompt": "#dbe8f6", "function": "#ececec", "end": "#333333"}
MARK = {"changed": "#e08a00", "added": "#2ca02c", "removed": "#d62728"}


def layered_positions(graph: nx.DiGraph) -> dict[str, tuple[float, float]]:
    """Top-down positions: a node's layer is its shortest distance from START (END below every other node, nodes
    START cannot reach in the last layer); nodes of a layer are centred side by side in the order they were added."""
    depth: dict[Any, int] = dict(nx.single_source_shortest_path_length(graph, START)) if START in graph else {}
    inner = [d for n, d in depth.items() if n != END]
    last = max(inner, default=0)
    layers: dict[int, list[Any]] = {}
    for node in graph.nodes:
        if node == END:
            layer = last + 1
        else:
            layer = depth.get(node, last + 1 if END not in graph else last)
        layers.setdefault(layer, []).append(node)
    pos: dict[str, tuple[float, float]] = {}
    for layer, names in layers.items():
        for i, name in enumerate(names):
            pos[name] = (i - (len(names) - 1) / 2, -float(layer))
    return pos


def _label(name: str, limit: int = 28) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _draw_nodes(ax: Axes, flow: Flow, pos: dict[str, tuple[float, float]], marks: dict[str, str]) -> None:
    for name, (x, y) in pos.items():
        if name in (START, END):
            ax.text(
                x,
                y,
                "START" if name == START else "END",
                ha="center",
                va="center",
                fontsize=8,
                color="white",
                parse_math=False,
                bbox={"boxstyle": "round,pad=0.35", "fc": FILL["end"], "ec": FILL["end"]},
            )
            continue
        node = flow.nodes.get(name)
        kind = "micro_prompt" if isinstance(node, MicroPrompt) else "function"
        mark = marks.get(name)
        ax.text(
            x,
            y,
            _label(name),
            ha="center",
            va="center",
            fontsize=10,
            parse_math=False,
            bbox={
                "boxstyle": "round,pad=0.5" if kind == "micro_prompt" else "square,pad=0.5",
                "fc": FILL[kind],
                "ec": MARK[mark] if mark else "#4d4d4d",
                "lw": 2.4 if mark else 1.0,
                "ls": "--" if mark == "removed" else "-",
            },
        )


def _draw_edges(ax: Axes, graph: nx.DiGraph, pos: dict[str, tuple[float, float]]) -> None:
    forward = [(a, b) for a, b in graph.edges if pos[b][1] < pos[a][1]]
    other = [(a, b) for a, b in graph.edges if (a, b) not in forward]
    common: dict[str, Any] = {
        "ax": ax,
        "arrows": True,
        "arrowstyle": "-|>",
        "arrowsize": 12,
        "edge_color": "#555555",
        "node_size": 1400,
        "min_source_margin": 14,
        "min_target_margin": 14,
    }
    nx.draw_networkx_edges(graph, pos, edgelist=forward, **common)
    if other:
        nx.draw_networkx_edges(graph, pos, edgelist=other, connectionstyle="arc3,rad=0.35", style="dashed", **common)
    for a, b, data in graph.edges(data=True):
        label = data.get("label")
        if data.get("kind") != "branch" or label is None:
            continue
        (x0, y0), (x1, y1) = pos[a], pos[b]
        ax.text(
            (x0 + x1) / 2,
            (y0 + y1) / 2,
            _label(str(label), 20),
            ha="center",
            va="center",
            fontsize=8,
            color="#444444",
            parse_math=False,
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.9},
        )


def graph_svg(flow: Flow, marks: dict[str, str], salt: str) -> str:
    """The flow's control graph as SVG; `marks` maps node names to 'changed', 'added' or 'removed'."""
    graph = flow.graph()
    pos = layered_positions(graph)
    xs = [x for x, _ in pos.values()] or [0.0]
    ys = [y for _, y in pos.values()] or [0.0]
    width = max(xs) - min(xs)
    size = (max(3.8, 2.3 * (width + 1)), max(2.4, 1.05 * (max(ys) - min(ys) + 1)))
    fig, ax = new_figure(size, {"axes.grid": False})
    ax.set_axis_off()
    _draw_edges(ax, graph, pos)
    _draw_nodes(ax, flow, pos, marks)
    ax.set_xlim(min(xs) - 0.9, max(xs) + 0.9)
    ax.set_ylim(min(ys) - 0.5, max(ys) + 0.5)
    return svg_of(fig, salt)
