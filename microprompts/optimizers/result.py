"""What `optimize` returns: the best flow, baseline and best scores (dev, and test when given), the journal,
the Pareto points, usage, a few failing dev rows of the best candidate, and the run report (a text summary here,
and the self-contained HTML page of `microprompts.optimizers.report`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from microprompts._io import atomic_write_text
from microprompts.flows import Flow
from microprompts.models.phases import shares_text
from microprompts.optimizers.candidate import Candidate
from microprompts.optimizers.report import changed_nodes, cost_of, lineage, mutation_text, prompt_text, render_html
from microprompts.optimizers.report import fmt as _fmt

__all__ = ["OptimizeResult", "lineage", "prompt_text", "render_html", "render_text"]


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
    failures: list[dict[str, Any]] = field(default_factory=list)  # a few failing dev rows of the best candidate
    # Share of this process's wall time per phase (`microprompts.models.phases`: model, rendering, parsing, mutating,
    # journaling, caching, waiting) and `other`, adding up to 1; a resumed run's covers the resumed part only.
    time_shares: dict[str, float] = field(default_factory=dict)
    # What `pareto`'s cost per row is in: tokens, or with prices per model, dollars (seconds when priced by time).
    cost_unit: str = "tokens"

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
            "time_shares": {k: round(v, 4) for k, v in self.time_shares.items()},
        }

    def report(self) -> str:
        """A text summary (scores, lineage, changed nodes); also writes report.html into the run directory."""
        if self.run_dir is not None:
            atomic_write_text(self.run_dir / "report.html", render_html(self))
        return render_text(self)


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
    if result.time_shares:
        lines.append(f"wall time: {shares_text(result.time_shares)}")
    lines.append("lineage of the best candidate:")
    for entry in result.lineage:
        lines.append(f"  {entry['id']}  dev {_fmt(entry.get('dev'))}  {mutation_text(entry)}")
    changed = changed_nodes(result.baseline.flow, result.best)
    lines.append(f"changed nodes: {', '.join(changed) if changed else 'none'}")
    if len(result.pareto) > 1:
        lines.append(f"Pareto front, {result.cost_unit} per row (pareto/<id>.json), cheapest first:")
        for p in sorted(result.pareto, key=cost_of):
            models = ", ".join(f"{n}={m}" for n, m in (p.get("models") or {}).items())
            lines.append(f"  {p['id']}  dev {_fmt(p['score'])}  {cost_of(p):.4g}  {models}")
    if result.run_dir is not None:
        lines.append(f"run directory: {result.run_dir} (best.json, pareto/, journal.jsonl, report.html)")
    return "\n".join(lines)
