"""What `optimize` returns: the best flow, baseline and best scores (dev, and test when given), the journal,
the Pareto points, usage, and the run report (a text summary, and a self-contained HTML page: scores, lineage,
prompt diffs, Pareto points)."""

from __future__ import annotations

import difflib
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from microprompts._io import atomic_write_text
from microprompts.flows import Flow
from microprompts.nodes import MicroPrompt
from microprompts.optimizers.candidate import Candidate

__all__ = ["OptimizeResult", "lineage", "prompt_text", "render_html", "render_text"]


def lineage(history: list[dict[str, Any]], best_id: str) -> list[dict[str, Any]]:
    """Journal entries from the baseline to `best_id`, following parents."""
    by_id: dict[str, dict[str, Any]] = {}
    for entry in history:
        if entry.get("event") == "candidate":
            by_id.setdefault(entry["id"], entry)
            if entry.get("dev") is not None:
                by_id[entry["id"]] = entry
    chain: list[dict[str, Any]] = []
    current: str | None = best_id
    while current is not None and current in by_id and len(chain) <= len(by_id):
        chain.append(by_id[current])
        current = by_id[current].get("parent")
    return list(reversed(chain))


@dataclass
class OptimizeResult:
    """The outcome of one optimization run; selection was on dev, test gives the final figures only."""

    best: Flow
    best_candidate: Candidate
    baseline: Candidate
    baseline_score: float
    best_score: float
    test_baseline: float | None
    test_best: float | None
    history: list[dict[str, Any]]
    pareto: list[dict[str, Any]]
    points: list[dict[str, Any]]
    usage: dict[str, Any]
    search: dict[str, Any]
    stopped: str | None = None
    run_dir: Path | None = None
    operators: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def lineage(self) -> list[dict[str, Any]]:
        """Journal entries from the baseline to the best candidate."""
        return lineage(self.history, self.best_candidate.id)

    @property
    def improved(self) -> bool:
        """True when the best candidate is not the baseline."""
        return self.best_candidate.id != self.baseline.id

    def summary(self) -> dict[str, Any]:
        """The figures as one JSON-able dict (the CLI's last line)."""
        candidates = [e for e in self.history if e.get("event") == "candidate"]
        return {
            "flow": self.baseline.flow.name,
            "baseline_dev": round(self.baseline_score, 6),
            "best_dev": round(self.best_score, 6),
            "baseline_test": None if self.test_baseline is None else round(self.test_baseline, 6),
            "best_test": None if self.test_best is None else round(self.test_best, 6),
            "best_id": self.best_candidate.id,
            "improved": self.improved,
            "candidates": len(candidates),
            "promoted": sum(1 for e in candidates if e.get("dev") is not None),
            "calls": self.usage["calls"],
            "cached_calls": self.usage["cached_calls"],
            "optimizer_calls": self.usage["optimizer_calls"],
            "tokens": self.usage["tokens"],
            "seconds": round(self.usage["seconds"], 3),
            "stopped": self.stopped,
            "run_dir": str(self.run_dir) if self.run_dir is not None else None,
            **({"metric_calls": self.usage["metric_calls"]} if "metric_calls" in self.usage else {}),
        }

    def report(self) -> str:
        """A text summary (scores, lineage, changed nodes); also writes report.html into the run directory."""
        if self.run_dir is not None:
            atomic_write_text(self.run_dir / "report.html", render_html(self))
        return render_text(self)


def prompt_text(flow: Flow, name: str) -> list[str]:
    """A node as reviewable lines: its parameters, then its system prompt with `{input}` placeholders."""
    node = flow.nodes.get(name)
    if node is None:
        return []
    if not isinstance(node, MicroPrompt):
        return [f"function node {name}: reads {list(node.reads)}, writes {list(node.writes)}"]
    params = json.dumps(node.params.model_dump(), sort_keys=True)
    messages = node.render({k: "{" + k + "}" for k in node.inputs})
    return [
        f"params: {params}",
        "",
        *str(messages[0].content).splitlines(),
        "",
        "user:",
        *str(messages[-1].content).splitlines(),
    ]


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _changed_nodes(result: OptimizeResult) -> list[str]:
    base, best = result.baseline.flow, result.best
    names = list(dict.fromkeys([*base.nodes, *best.nodes]))
    return [n for n in names if prompt_text(base, n) != prompt_text(best, n)]


def _mutation_text(entry: dict[str, Any]) -> str:
    m = entry.get("mutation") or {}
    if not m:
        return "baseline"
    after = m.get("after")
    shown = after if isinstance(after, str) else json.dumps(after, ensure_ascii=False)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return f"{m.get('operator')} {m.get('address')} -> {shown}"


def render_text(result: OptimizeResult) -> str:
    """A few lines: scores, how the run ended, cost, the best candidate's lineage and which nodes changed."""
    s = result.summary()
    lines = [
        f"optimize {result.baseline.flow.name}: dev {_fmt(result.baseline_score)} -> {_fmt(result.best_score)} "
        f"({result.best_score - result.baseline_score:+.3f})"
    ]
    if result.test_baseline is not None:
        lines.append(f"test {_fmt(result.test_baseline)} -> {_fmt(result.test_best)}")
    lines.append(
        f"search {result.search.get('name')}: {s['candidates']} candidates, {s['promoted']} on full dev; "
        f"{result.stopped or 'search finished'}"
    )
    lines.append(
        f"calls {s['calls']} paid ({s['cached_calls']} cached), optimizer calls {s['optimizer_calls']}, "
        f"tokens {s['tokens']}, {s['seconds']:.1f}s"
    )
    lines.append("lineage of the best candidate:")
    for entry in result.lineage:
        lines.append(f"  {entry['id']}  dev {_fmt(entry.get('dev'))}  {_mutation_text(entry)}")
    changed = _changed_nodes(result)
    lines.append(f"changed nodes: {', '.join(changed) if changed else 'none'}")
    if result.run_dir is not None:
        lines.append(f"run directory: {result.run_dir} (best.json, journal.jsonl, report.html)")
    return "\n".join(lines)


_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}
table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top;font-size:13px}
table.diff{font-family:monospace;font-size:12px}.diff_add{background:#cfc}.diff_chg{background:#ffa}
.diff_sub{background:#fcc}h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}"""


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _scatter(points: list[dict[str, Any]], front: list[dict[str, Any]]) -> str:
    if not points:
        return ""
    w, h, pad = 480, 260, 40
    xs = [p["tokens_per_row"] for p in points]
    ys = [p["score"] for p in points]
    x0, x1 = min(xs), max(xs) or 1
    y0, y1 = min(ys), max(ys)

    def sx(x: float) -> float:
        return pad + (x - x0) / ((x1 - x0) or 1) * (w - 2 * pad)

    def sy(y: float) -> float:
        return h - pad - (y - y0) / ((y1 - y0) or 1) * (h - 2 * pad)

    ids = {p["id"] for p in front}
    dots = "".join(
        f'<circle cx="{sx(p["tokens_per_row"]):.1f}" cy="{sy(p["score"]):.1f}" r="4" '
        f'fill="{"#d33" if p["id"] in ids else "#999"}"><title>{html.escape(p["id"])}</title></circle>'
        for p in points
    )
    axes = (
        f'<text x="{w / 2}" y="{h - 8}" font-size="11">tokens per row</text>'
        f'<text x="4" y="14" font-size="11">dev score</text>'
    )
    return f'<svg width="{w}" height="{h}" style="border:1px solid #ddd">{axes}{dots}</svg>'


def render_html(result: OptimizeResult) -> str:
    """The self-contained report page."""
    s = result.summary()
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>microprompts optimize "
        f"{html.escape(result.baseline.flow.name)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Optimizing {html.escape(result.baseline.flow.name)}</h1>",
    ]
    scores = [["dev", _fmt(result.baseline_score), _fmt(result.best_score)]]
    if result.test_baseline is not None:
        scores.append(["test", _fmt(result.test_baseline), _fmt(result.test_best)])
    parts.append(_table(["split", "baseline", "best"], scores))
    parts.append(
        _table(
            [
                "search",
                "candidates",
                "on full dev",
                "paid calls",
                "cached calls",
                "optimizer calls",
                "tokens",
                "seconds",
                "ended",
            ],
            [
                [
                    result.search.get("name"),
                    s["candidates"],
                    s["promoted"],
                    s["calls"],
                    s["cached_calls"],
                    s["optimizer_calls"],
                    s["tokens"],
                    f"{s['seconds']:.1f}",
                    result.stopped or "search finished",
                ]
            ],
        )
    )
    parts.append("<h2>Lineage of the best candidate</h2>")
    parts.append(
        _table(
            ["id", "operator", "address", "minibatch", "dev", "tokens/row", "change"],
            [
                [
                    e["id"],
                    e.get("operator") or "baseline",
                    (e.get("mutation") or {}).get("address", ""),
                    _fmt(e.get("minibatch")),
                    _fmt(e.get("dev")),
                    _fmt(e.get("tokens_per_row")),
                    _mutation_text(e),
                ]
                for e in result.lineage
            ],
        )
    )
    parts.append("<h2>Prompt changes per node (baseline vs best)</h2>")
    changed = _changed_nodes(result)
    if not changed:
        parts.append("<p>No node changed: the baseline is the best candidate found.</p>")
    differ = difflib.HtmlDiff(wrapcolumn=90)
    for name in changed:
        parts.append(f"<h3>{html.escape(name)}</h3>")
        parts.append(
            differ.make_table(
                prompt_text(result.baseline.flow, name),
                prompt_text(result.best, name),
                "baseline",
                "best",
                context=False,
            )
        )
    parts.append("<h2>Pareto front: dev score vs tokens per row</h2>")
    parts.append(_scatter(result.points, result.pareto))
    parts.append(
        _table(
            ["id", "dev score", "tokens/row", "objective"],
            [[p["id"], _fmt(p["score"]), f"{p['tokens_per_row']:.1f}", _fmt(p["objective"])] for p in result.pareto],
        )
    )
    if result.operators:
        parts.append("<h2>Operators (bandit)</h2>")
        parts.append(
            _table(
                ["operator", "tries", "mean reward"],
                [[n, v["pulls"], v["mean_reward"]] for n, v in result.operators.items()],
            )
        )
    parts.append("</body></html>")
    return "\n".join(parts)
