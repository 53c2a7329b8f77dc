"""What the report reads from a run, as plain values: the run's shape (`RunView`), the best candidate's lineage,
each node as reviewable text, and one row per candidate with why the search stopped with it."""

from __future__ import annotations

import json
from typing import Any, Protocol

from microprompts.flows import Flow
from microprompts.nodes import MicroPrompt
from microprompts.optimizers.candidate import Candidate

__all__ = [
    "CandidateRow",
    "RunView",
    "candidate_rows",
    "changed_nodes",
    "fmt",
    "lineage",
    "mutation_text",
    "prompt_text",
]


class RunView(Protocol):
    """The parts of an `OptimizeResult` the report reads (a protocol, so the report does not import the result)."""

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
    stopped: str | None
    operators: dict[str, dict[str, float]]
    failures: list[dict[str, Any]]
    cost_unit: str

    def summary(self) -> dict[str, Any]:
        """The run's figures as one dict."""
        ...


def fmt(value: float | None) -> str:
    """A score for people: three decimals, or '-' when there is none."""
    return "-" if value is None else f"{value:.3f}"


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


def changed_nodes(before: Flow, after: Flow) -> list[str]:
    """Nodes of either flow whose reviewable text differs (added and removed nodes included), in flow order."""
    names = list(dict.fromkeys([*before.nodes, *after.nodes]))
    return [n for n in names if prompt_text(before, n) != prompt_text(after, n)]


def mutation_text(entry: dict[str, Any], limit: int = 80) -> str:
    """One line for what made a candidate: operator, address and the new value (cut to `limit` characters)."""
    m = entry.get("mutation") or {}
    if not m:
        return "baseline"
    after = m.get("after")
    shown = after if isinstance(after, str) else json.dumps(after, ensure_ascii=False, default=str)
    shown = shown if len(shown) <= limit else shown[: limit - 3] + "..."
    return f"{m.get('operator')} {m.get('address')} -> {shown}"


# One row of the candidates table: order, id, parent, calls, operator, address, change, status, minibatch(_n), dev,
# tokens_per_row, objective, why.
CandidateRow = dict[str, Any]


def _why(entry: dict[str, Any], best_id: str, on_path: set[str]) -> str:
    status = str(entry.get("status") or "")
    if entry.get("id") == best_id:
        return "winner (best objective on dev)"
    if status == "baseline":
        return "baseline (the seed flow)"
    if status == "screened_out":
        n = entry.get("minibatch_n") or 0
        return f"screened out: {fmt(entry.get('minibatch'))} on a {n}-row minibatch did not earn a full-dev run"
    if status == "stopped":
        return "stopped: the budget ran out while scoring it"
    scored = "promoted to full dev" if status == "promoted" else "scored on full dev"
    if entry.get("id") in on_path:
        return f"{scored}; an ancestor of the winner"
    return f"{scored}; pruned (lower objective than the winner)"


def candidate_rows(history: list[dict[str, Any]], best_id: str) -> list[CandidateRow]:
    """Every journaled candidate, in journal order, with the calls spent by then and why the search left it."""
    on_path = {e["id"] for e in lineage(history, best_id)}
    rows: list[CandidateRow] = []
    for order, entry in enumerate(e for e in history if e.get("event") == "candidate"):
        m = entry.get("mutation") or {}
        rows.append(
            dict(
                order=order,
                id=str(entry.get("id")),
                parent=entry.get("parent"),
                calls=int(entry.get("calls") or 0),
                operator=entry.get("operator") or "baseline",
                address=str(m.get("address") or ", ".join(entry.get("touched") or []) or "-"),
                change=mutation_text(entry),
                status=str(entry.get("status") or ""),
                minibatch=entry.get("minibatch"),
                minibatch_n=int(entry.get("minibatch_n") or 0),
                dev=entry.get("dev"),
                tokens_per_row=entry.get("tokens_per_row"),
                objective=entry.get("objective"),
                why=_why(entry, best_id, on_path),
            )
        )
    return rows
