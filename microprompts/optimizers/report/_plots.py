"""The report's plots, drawn by matplotlib (no pyplot, so no global backend state) and inlined as SVG text: score
over task-model calls for every candidate with the best-so-far line, and the Pareto front of score against cost."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Any

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from microprompts.optimizers.report._view import CandidateRow

__all__ = ["STYLE", "cost_of", "new_figure", "pareto_svg", "progress_svg", "spread_calls", "svg_of"]

# One look for every figure: text stays text in the SVG (small, searchable, selectable), ids are salted per figure
# so two inline SVGs never share an id, and no date is written (the same run gives the same page).
STYLE: dict[Any, Any] = {
    "svg.fonttype": "none",
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e5e5e5",
    "axes.axisbelow": True,
}

_ID = re.compile(r'<[^<>]*\sid="([^"]+)"')

COLORS = {
    "baseline": "#222222",
    "screened_out": "#9a9a9a",
    "promoted": "#2f6fb3",
    "stopped": "#d08a00",
    "winner": "#d62728",
    "best": "#d62728",
}


def new_figure(size: tuple[float, float], style: dict[Any, Any] | None = None) -> tuple[Figure, Axes]:
    """A figure with one axes, styled by the report's look (rc settings are read when the axes is made)."""
    with mpl.rc_context(STYLE if style is None else {**STYLE, **style}):
        fig = Figure(figsize=size)
        return fig, fig.add_subplot()


def svg_of(fig: Figure, salt: str) -> str:
    """The figure as an inline `<svg>` element (no XML prolog), with ids salted by `salt`."""
    buffer = io.StringIO()
    rc: dict[Any, Any] = {**STYLE, "svg.hashsalt": salt}
    with mpl.rc_context(rc):
        fig.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buffer.getvalue()
    return own_ids(text[text.index("<svg") :], salt)


def own_ids(svg: str, prefix: str) -> str:
    """The SVG with every id (and each reference to one) prefixed, so figures on one page never share an id."""
    ids = set(_ID.findall(svg))
    svg = re.sub(r'(<[^<>]*\sid=")([^"]+)"', lambda m: f'{m.group(1)}{prefix}-{m.group(2)}"', svg)
    return re.sub(
        r'(url\(#|href="#)([^")]+)',
        lambda m: m.group(1) + (f"{prefix}-{m.group(2)}" if m.group(2) in ids else m.group(2)),
        svg,
    )


def spread_calls(rows: Sequence[CandidateRow]) -> list[float]:
    """An x per candidate: the calls spent when it was journaled. Candidates journaled together (one screening batch)
    are spread evenly over the calls their batch spent, so they do not sit on one vertical line."""
    xs: list[float] = []
    start = 0
    while start < len(rows):
        end = start
        while end < len(rows) and rows[end]["calls"] == rows[start]["calls"]:
            end += 1
        before = float(rows[start - 1]["calls"]) if start else 0.0
        here = float(rows[start]["calls"])
        k = end - start
        if k == 1 or here <= before:
            xs.extend([here] * k)
        else:
            xs.extend(before + (here - before) * (i + 1) / k for i in range(k))
        start = end
    return xs


def _kind(row: CandidateRow, best_id: str) -> str:
    if row["id"] == best_id:
        return "winner"
    if row["status"] in ("promoted", "evaluated"):
        return "promoted"
    return row["status"] if row["status"] in COLORS else "promoted"


def progress_svg(rows: Sequence[CandidateRow], best_id: str) -> str:
    """Score over task-model calls: full-dev scores (filled) and minibatch scores of screened-out children (hollow),
    the baseline and the winner marked, and the best dev score so far as a step line."""
    fig, ax = new_figure((9.5, 4.0))
    xs = spread_calls(rows)
    groups: dict[str, tuple[list[float], list[float]]] = {}
    best_x: list[float] = []
    best_y: list[float] = []
    best = None
    for x, row in zip(xs, rows, strict=True):
        score = row["dev"] if row["dev"] is not None else row["minibatch"]
        if score is None:
            continue
        kind = _kind(row, best_id)
        groups.setdefault(kind, ([], []))[0].append(x)
        groups[kind][1].append(float(score))
        if row["dev"] is not None and (best is None or row["dev"] > best):
            best = float(row["dev"])
            best_x.append(x)
            best_y.append(best)
    if best_x:
        best_x.append(max(xs))
        best_y.append(best_y[-1])
        ax.step(best_x, best_y, where="post", color=COLORS["best"], lw=1.6, alpha=0.8, label="best dev score so far")
    styles = {
        "screened_out": dict(marker="o", s=30, facecolors="none", label="screened out (minibatch score)"),
        "stopped": dict(marker="x", s=36, label="stopped by the budget"),
        "promoted": dict(marker="o", s=34, label="promoted (full-dev score)"),
        "baseline": dict(marker="s", s=46, label="baseline"),
        "winner": dict(marker="*", s=190, label="winner", zorder=5),
    }
    for kind, style in styles.items():
        if kind not in groups:
            continue
        gx, gy = groups[kind]
        color = COLORS[kind]
        edge = {"edgecolors": color} if style.get("facecolors") == "none" else {"color": color}
        ax.scatter(gx, gy, linewidths=1.2, **edge, **style)  # pyright: ignore[reportArgumentType]
    ax.set_xlabel("task-model calls spent (cumulative)")
    ax.set_ylabel("score")
    ax.set_xlim(left=0)
    scores = [y for _, ys in groups.values() for y in ys]
    if scores and min(scores) >= 0 and max(scores) <= 1:
        ax.set_ylim(-0.03, 1.03)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    return svg_of(fig, "progress")


def cost_of(point: dict[str, Any]) -> float:
    """A point's cost per row: priced when the run had prices, else (and for older runs) its tokens per row."""
    cost = point.get("cost_per_row")
    return float(cost if cost is not None else point["tokens_per_row"])


def pareto_svg(
    points: Sequence[dict[str, Any]],
    front: Sequence[dict[str, Any]],
    best_id: str,
    baseline_id: str,
    unit: str = "tokens",
) -> str:
    """Dev score against cost per row (in `unit`: tokens, dollars or seconds) for every full-dev candidate; the
    Pareto front joined as a step line, the baseline and the winner labelled."""
    fig, ax = new_figure((6.2, 3.8))
    on_front = {p["id"] for p in front}
    rest = [p for p in points if p["id"] not in on_front]
    if rest:
        ax.scatter(
            [cost_of(p) for p in rest],
            [p["score"] for p in rest],
            s=30,
            color=COLORS["screened_out"],
            label="dominated",
        )
    ordered = sorted(front, key=lambda p: (cost_of(p), p["score"]))
    if ordered:
        fx, fy = [cost_of(p) for p in ordered], [p["score"] for p in ordered]
        ax.step(fx, fy, where="post", color=COLORS["best"], lw=1.2, alpha=0.6)
        ax.scatter(fx, fy, s=40, color=COLORS["best"], label="Pareto front", zorder=4)
    for p in points:
        if p["id"] in (best_id, baseline_id):
            name = "winner" if p["id"] == best_id else "baseline"
            ax.annotate(
                f"{name} {p['id'][:8]}",
                (cost_of(p), p["score"]),
                xytext=(6, -12 if name == "baseline" else 6),
                textcoords="offset points",
                fontsize=9,
                parse_math=False,
            )
    ax.set_xlabel(f"{unit} per row (cost)")
    ax.set_ylabel("dev score")
    if points and all(0 <= p["score"] <= 1 for p in points):
        ax.set_ylim(-0.03, 1.08)
    ax.margins(x=0.15)
    if points:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    return svg_of(fig, "pareto")
