"""Monitoring a deployed agent from its run store: the rolling score from feedback per artifact and per node, the
latency and tokens per node, as a plain-text table and a PNG plot (matplotlib, no pyplot: no global state)."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from pydantic import BaseModel, Field

__all__ = ["ArtifactStats", "NodeStats", "feedback_score", "has_correction", "monitor", "plot", "rolling", "table"]


class NodeStats(BaseModel):
    """One node under one artifact: how often it ran, its mean seconds and tokens, and the rolling feedback score
    of the runs it took part in (None without feedback)."""

    node: str
    runs: int = 0
    errors: int = 0
    seconds: float = 0.0
    tokens: float = 0.0
    score: float | None = None


class ArtifactStats(BaseModel):
    """One served artifact: runs, errors, feedback count, runs with a corrected output, rolling score, mean latency
    and tokens, and its nodes."""

    artifact_hash: str
    runs: int = 0
    errors: int = 0
    feedback: int = 0
    corrections: int = 0
    score: float | None = None
    latency: float = 0.0
    tokens: float = 0.0
    nodes: dict[str, NodeStats] = Field(default_factory=dict)


def feedback_score(run: dict[str, Any]) -> float | None:
    """A run's score: its last feedback's, None without feedback."""
    notes = [f for f in run.get("feedback") or [] if isinstance(f, dict) and isinstance(f.get("score"), (int, float))]
    return float(notes[-1]["score"]) if notes else None


def has_correction(run: dict[str, Any]) -> bool:
    """Whether a run's feedback carries a correction (a non-empty `correction` object)."""
    return any(
        isinstance(f, dict) and isinstance(f.get("correction"), dict) and f["correction"]
        for f in run.get("feedback") or []
    )


def rolling(scores: Sequence[float], window: int) -> list[float]:
    """The mean of each score with the up to `window - 1` before it."""
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    return [
        sum(scores[max(0, i + 1 - window) : i + 1]) / len(scores[max(0, i + 1 - window) : i + 1])
        for i in range(len(scores))
    ]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _trace_tokens(trace: dict[str, Any]) -> int:
    given = trace.get("usage")
    usage: dict[str, Any] = given if isinstance(given, dict) else {}
    return int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0)


def _node_stats(name: str, runs: list[dict[str, Any]], window: int) -> NodeStats:
    traces = [t for run in runs for t in run.get("traces") or [] if isinstance(t, dict) and t.get("node") == name]
    ran = [run for run in runs if any(isinstance(t, dict) and t.get("node") == name for t in run.get("traces") or [])]
    scores = [s for s in map(feedback_score, ran) if s is not None]
    return NodeStats(
        node=name,
        runs=len(traces),
        errors=sum(1 for t in traces if t.get("error")),
        seconds=_mean([float(t.get("seconds") or 0.0) for t in traces]),
        tokens=_mean([float(_trace_tokens(t)) for t in traces]),
        score=rolling(scores, window)[-1] if scores else None,
    )


def monitor(
    runs: Sequence[dict[str, Any]], window: int = 20, corrected: Callable[[dict[str, Any]], bool] = has_correction
) -> list[ArtifactStats]:
    """Stats per artifact (in order of first run) from whole runs, oldest first (`RunStore.full_runs`); the rolling
    score is the mean of the last `window` feedback scores; `corrected` says which runs count as corrected (the CLI
    passes the reader that also knows the older comment form, `microprompts.evals.finetune.last_correction`)."""
    by_artifact: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_artifact.setdefault(str(run.get("artifact_hash") or "(none)"), []).append(run)
    out: list[ArtifactStats] = []
    for artifact, group in by_artifact.items():
        scores = [s for s in map(feedback_score, group) if s is not None]
        names = list(
            dict.fromkeys(str(t.get("node")) for r in group for t in r.get("traces") or [] if isinstance(t, dict))
        )
        out.append(
            ArtifactStats(
                artifact_hash=artifact,
                runs=len(group),
                errors=sum(1 for r in group if r.get("error")),
                feedback=len(scores),
                corrections=sum(1 for r in group if corrected(r)),
                score=rolling(scores, window)[-1] if scores else None,
                latency=_mean([float(r.get("latency") or 0.0) for r in group]),
                tokens=_mean(
                    [float(int(r.get("prompt_tokens") or 0) + int(r.get("completion_tokens") or 0)) for r in group]
                ),
                nodes={n: _node_stats(n, group, window) for n in names},
            )
        )
    return out


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def table(stats: Sequence[ArtifactStats]) -> str:
    """A plain-text table: one line per artifact, then one per node under it."""
    head = (
        f"{'artifact / node':<28} {'runs':>6} {'errors':>6} {'feedback':>8} {'fixed':>5} {'score':>7} "
        f"{'seconds':>8} {'tokens':>8}"
    )
    lines = [head, "-" * len(head)]
    for art in stats:
        name = art.artifact_hash if len(art.artifact_hash) <= 28 else art.artifact_hash[:25] + "..."
        lines.append(
            f"{name:<28} {art.runs:>6} {art.errors:>6} {art.feedback:>8} {art.corrections:>5} {_score(art.score):>7} "
            f"{art.latency:>8.3f} {art.tokens:>8.1f}"
        )
        for node in art.nodes.values():
            label = f"  {node.node}"[:28]
            lines.append(
                f"{label:<28} {node.runs:>6} {node.errors:>6} {'':>8} {'':>5} {_score(node.score):>7} "
                f"{node.seconds:>8.3f} {node.tokens:>8.1f}"
            )
    return "\n".join(lines)


def plot(runs: Sequence[dict[str, Any]], path: str | Path, window: int = 20) -> Path:
    """A PNG of the rolling feedback score per artifact over the runs with feedback (written atomically)."""
    fig = Figure(figsize=(8, 4))
    ax = fig.add_subplot()
    by_artifact: dict[str, list[tuple[int, float]]] = {}
    seen = 0
    for run in runs:
        score = feedback_score(run)
        if score is None:
            continue
        seen += 1
        by_artifact.setdefault(str(run.get("artifact_hash") or "(none)")[:19], []).append((seen, score))
    for artifact, points in by_artifact.items():
        ax.plot([x for x, _ in points], rolling([s for _, s in points], window), label=artifact, marker=".")
    ax.set_xlabel("runs with feedback")
    ax.set_ylabel(f"rolling score (window {window})")
    ax.set_title("feedback score per artifact")
    if by_artifact:
        ax.legend(loc="best", fontsize="small")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(buffer.getvalue())
    partial.replace(target)
    return target
