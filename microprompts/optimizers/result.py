"""What `optimize` returns: the best flow, baseline and best scores (dev, and test when given), the journal,
the Pareto points, usage, and the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from microprompts._io import atomic_write_text
from microprompts.flows import Flow
from microprompts.optimizers.candidate import Candidate

__all__ = ["OptimizeResult", "lineage"]


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
            "baseline_dev": round(self.baseline_score, 6), "best_dev": round(self.best_score, 6),
            "baseline_test": None if self.test_baseline is None else round(self.test_baseline, 6),
            "best_test": None if self.test_best is None else round(self.test_best, 6),
            "best_id": self.best_candidate.id, "improved": self.improved,
            "candidates": len(candidates), "promoted": sum(1 for e in candidates if e.get("dev") is not None),
            "calls": self.usage["calls"], "cached_calls": self.usage["cached_calls"],
            "optimizer_calls": self.usage["optimizer_calls"], "tokens": self.usage["tokens"],
            "seconds": round(self.usage["seconds"], 3), "stopped": self.stopped,
            "run_dir": str(self.run_dir) if self.run_dir is not None else None,
            **({"metric_calls": self.usage["metric_calls"]} if "metric_calls" in self.usage else {}),
        }

    def report(self) -> str:
        """A text summary (scores, lineage, changed nodes); also writes report.html into the run directory."""
        from microprompts.optimizers.report import render_html, render_text

        if self.run_dir is not None:
            atomic_write_text(self.run_dir / "report.html", render_html(self))
        return render_text(self)
