"""The report page: one self-contained HTML file (inline CSS, inline SVG plots, a few lines of inline JS to sort the
candidates table), no network. Every value from the run (prompt text, replies, row values, ids) is escaped."""

from __future__ import annotations

import difflib
import html
import json
from collections.abc import Sequence
from typing import Any

from microprompts.optimizers.report._assets import SCRIPT, STYLE
from microprompts.optimizers.report._graph import graph_svg
from microprompts.optimizers.report._plots import cost_of, pareto_svg, progress_svg
from microprompts.optimizers.report._view import (
    CandidateRow,
    RunView,
    candidate_rows,
    changed_nodes,
    fmt,
    prompt_text,
)

__all__ = ["render_html"]

_e = html.escape


def _cell(value: Any, sort: Any = None, cls: str = "") -> str:
    key = "" if sort is None else f' data-v="{_e(str(sort))}"'
    klass = f' class="{cls}"' if cls else ""
    return f"<td{key}{klass}>{_e(str(value))}</td>"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _cards(view: RunView) -> str:
    s = view.summary()
    delta = view.best_score - view.baseline_score
    cards = [
        ("dev score", f"{fmt(view.baseline_score)} → {fmt(view.best_score)}", f"{delta:+.3f}"),
    ]
    if view.test_baseline is not None:
        gain = (view.test_best or 0.0) - view.test_baseline
        cards.append(("test score", f"{fmt(view.test_baseline)} → {fmt(view.test_best)}", f"{gain:+.3f}"))
    screened = sum(1 for e in view.history if e.get("status") == "screened_out")
    cards += [
        ("candidates", str(s["candidates"]), f"{s['promoted']} on full dev, {screened} screened out"),
        ("task-model calls", str(s["calls"]), f"{s['cached_calls']} cached, optimizer {s['optimizer_calls']}"),
        ("tokens", str(s["tokens"]), f"{s['seconds']:.1f} s"),
        ("search", str(view.search.get("name") or "-"), view.stopped or "search finished"),
    ]
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="k">{_e(k)}</div><div class="v">{_e(v)}</div>'
            f'<div class="n">{_e(n)}</div></div>'
            for k, v, n in cards
        )
        + "</div>"
    )


_COLUMNS = [
    ("order", "#", "num"),
    ("id", "id", "text"),
    ("calls", "calls", "num"),
    ("operator", "operator", "text"),
    ("address", "address", "text"),
    ("minibatch", "minibatch", "num"),
    ("dev", "dev", "num"),
    ("tokens_per_row", "tokens/row", "num"),
    ("why", "why it stopped", "text"),
]


def _candidates_table(rows: Sequence[CandidateRow], best_id: str) -> str:
    head = "".join(f'<th data-key="{k}" data-type="{t}" title="sort">{_e(label)}</th>' for k, label, t in _COLUMNS)
    body: list[str] = []
    for r in rows:
        cls = "winner" if r["id"] == best_id else r["status"]
        mb = f"{fmt(r['minibatch'])} ({r['minibatch_n']})" if r["minibatch"] is not None else "-"
        cells = [
            _cell(r["order"], r["order"], "nw"),
            f'<td class="nw" title="{_e(r["id"])}"><code>{_e(r["id"][:10])}</code></td>',
            _cell(r["calls"], r["calls"], "nw"),
            _cell(r["operator"]),
            f'<td class="addr" title="{_e(r["change"])}">{_e(r["address"]).replace(".", ".<wbr>")}'
            f'<div class="chg">{_e(_after(r["change"]))}</div></td>',
            _cell(mb, "" if r["minibatch"] is None else r["minibatch"], "nw"),
            _cell(fmt(r["dev"]), "" if r["dev"] is None else r["dev"], "nw"),
            _cell(_tokens(r["tokens_per_row"]), "" if r["tokens_per_row"] is None else r["tokens_per_row"], "nw"),
            _cell(r["why"]),
        ]
        body.append(f'<tr class="{_e(cls)}">{"".join(cells)}</tr>')
    return (
        f'<table class="sortable" id="candidates"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


def _after(change: str) -> str:
    return change.split(" -> ", 1)[1] if " -> " in change else ""


def _tokens(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _cost(value: float, unit: str) -> str:
    return f"{value:.1f}" if unit == "tokens" else f"{value:.3g}"


def _front_models(view: RunView) -> str:
    """Which nodes can run on the small model: per front member (cheapest first), the model each node runs on."""
    front = sorted((p for p in view.pareto if p.get("models")), key=lambda p: (cost_of(p), -p["score"]))
    if not front:
        return ""
    nodes = list(dict.fromkeys(n for p in front for n in p["models"]))
    rows = [
        [p["id"], fmt(p["score"]), _cost(cost_of(p), view.cost_unit), *(p["models"].get(n, "-") for n in nodes)]
        for p in front
    ]
    return (
        "<h3>Which nodes can run on the small model</h3>"
        '<p class="note">The model each micro-prompt runs on, per candidate on the front, cheapest first; each is '
        "saved as <code>pareto/&lt;id&gt;.json</code> in the run directory, ready to serve.</p>"
        + _table(["candidate", "dev score", f"{view.cost_unit}/row", *nodes], rows)
    )


def _diffs(view: RunView, changed: Sequence[str]) -> str:
    if not changed:
        return "<p>No node changed: the baseline is the best candidate found.</p>"
    parts: list[str] = []
    for name in changed:
        before, after = prompt_text(view.baseline.flow, name), prompt_text(view.best, name)
        note = " (added)" if not before else " (removed)" if not after else ""
        lines = difflib.unified_diff(before, after, f"{name} (seed)", f"{name} (best)", lineterm="", n=2)
        out = []
        for line in lines:
            kind = "hunk" if line.startswith("@@") else {"+": "add", "-": "del"}.get(line[:1], "ctx")
            kind = "file" if line.startswith(("+++", "---")) else kind
            out.append(f'<span class="{kind}">{_e(line) or " "}</span>')
        parts.append(f'<h3>{_e(name)}{note}</h3><pre class="udiff">{"".join(out)}</pre>')
    return "".join(parts)


def _graphs(view: RunView, changed: Sequence[str]) -> str:
    seed, best = view.baseline.flow, view.best
    after = {n: "added" if n not in seed.nodes else "changed" for n in changed if n in best.nodes}
    before = {n: "removed" if n not in best.nodes else "changed" for n in changed if n in seed.nodes}
    legend = (
        '<p class="legend"><span class="sw mp"></span>micro-prompt <span class="sw fn"></span>function node '
        '<span class="sw ch"></span>changed <span class="sw ad"></span>added <span class="sw rm"></span>removed</p>'
    )
    return (
        f'<div class="pair"><figure><figcaption>seed</figcaption>{graph_svg(seed, before, "graph-seed")}</figure>'
        f"<figure><figcaption>best</figcaption>{graph_svg(best, after, 'graph-best')}</figure></div>{legend}"
    )


def _short(value: Any, limit: int = 400) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _failures(view: RunView) -> str:
    rows = view.failures
    if not rows:
        return (
            "<p>No failing dev row kept for the best candidate (it scored every row fully, or the run kept none).</p>"
        )
    body = "".join(
        "<tr>"
        + f"<td><code>{_e(str(r.get('row')))}</code></td>"
        + "".join(f"<td>{_e(_short(r.get(k)))}</td>" for k in ("inputs", "expected", "prediction"))
        + f"<td>{_e(fmt(r.get('score')))}</td>"
        + f"<td>{_e(_short(r.get('error') or r.get('feedback') or ''))}</td></tr>"
        for r in rows
    )
    columns = (("row", 10), ("inputs", 24), ("expected", 15), ("prediction", 22), ("score", 7), ("feedback", 22))
    cols = "".join(f'<col style="width:{w}%">' for _, w in columns)
    head = "".join(f"<th>{h}</th>" for h, _ in columns)
    return f'<table class="rows"><colgroup>{cols}</colgroup><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _proposals(view: RunView) -> str:
    other = [e for e in view.history if e.get("event") in ("rejected", "skipped")]
    if not other:
        return ""
    rows = [
        [e.get("event"), e.get("operator") or "-", e.get("parent") or "-", _short(e.get("reason"), 300)] for e in other
    ]
    return (
        f"<details><summary>{len(other)} proposal{'s' if len(other) != 1 else ''} not scored "
        "(rejected as invalid, or skipped for budget)</summary>"
        + _table(["event", "operator", "parent", "reason"], rows, "rows")
        + "</details>"
    )


def render_html(view: RunView) -> str:
    """The self-contained report page of a run."""
    name = view.baseline.flow.name
    best_id = view.best_candidate.id
    rows = candidate_rows(view.history, best_id)
    changed = changed_nodes(view.baseline.flow, view.best)
    sections = [
        f"<h1>Optimizing <code>{_e(name)}</code></h1>",
        _cards(view),
        "<h2>Score over task-model calls</h2>",
        '<p class="note">Every candidate: full-dev score when promoted, minibatch score when screened out. '
        "Candidates journaled together are spread over the calls their batch spent.</p>",
        f'<figure class="plot" id="progress">{progress_svg(rows, best_id)}</figure>',
        "<h2>Pareto front: dev score vs cost</h2>",
        f'<div class="pair"><figure class="plot half" id="pareto">'
        f"{pareto_svg(view.points, view.pareto, best_id, view.baseline.id, view.cost_unit)}</figure>"
        + _table(
            ["on the front", "dev score", f"{view.cost_unit}/row", "objective"],
            [[p["id"], fmt(p["score"]), _cost(cost_of(p), view.cost_unit), fmt(p["objective"])] for p in view.pareto],
        )
        + "</div>",
        _front_models(view),
        "<h2>Graph: seed and best</h2>",
        _graphs(view, changed),
        "<h2>Prompt changes per node (seed → best)</h2>",
        _diffs(view, changed),
        f"<h2>Failing dev rows of the best candidate ({len(view.failures)} shown)</h2>",
        _failures(view),
        f"<h2>Candidates ({len(rows)})</h2><p class='note'>Click a column to sort.</p>",
        _candidates_table(rows, best_id),
        _proposals(view),
    ]
    if view.operators:
        sections.append("<h2>Operators (bandit)</h2>")
        sections.append(
            _table(
                ["operator", "tries", "mean reward"],
                [[n, v.get("pulls"), f"{v.get('mean_reward', 0.0):.3f}"] for n, v in view.operators.items()],
            )
        )
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>microprompts optimize {_e(name)}</title><style>{STYLE}</style></head><body><main>"
        + "\n".join(s for s in sections if s)
        + f"</main><script>{SCRIPT}</script></body></html>"
    )
