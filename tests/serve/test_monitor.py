"""Monitoring from stored runs: rolling scores per artifact and node, latency and tokens, the table and the plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from microprompts.serve.monitor import feedback_score, monitor, plot, rolling, table


def _run(artifact: str, score: float | None, seconds: float = 0.5, error: str | None = None) -> dict[str, Any]:
    usage = {"prompt_tokens": 10, "completion_tokens": 2}
    traces = [
        {"node": "extract", "seconds": seconds, "usage": usage},
        {"node": "reply", "seconds": 2 * seconds, "usage": usage, "error": error},
    ]
    return {
        "artifact_hash": artifact,
        "latency": 3 * seconds,
        "prompt_tokens": 20,
        "completion_tokens": 4,
        "error": error,
        "traces": traces,
        "feedback": [] if score is None else [{"score": 0.0}, {"score": score}],
    }


def test_rolling_means_and_feedback_score() -> None:
    assert rolling([1.0, 0.0, 1.0, 1.0], 2) == [1.0, 0.5, 0.5, 1.0]
    with pytest.raises(ValueError, match="window"):
        rolling([1.0], 0)
    assert feedback_score(_run("a", 0.25)) == 0.25 and feedback_score(_run("a", None)) is None


def test_stats_per_artifact_and_node() -> None:
    runs = [
        _run("old", 1.0),
        _run("old", 0.0),
        _run("old", 0.0),
        _run("new", 1.0, 1.0, error="boom"),
        _run("new", None),
    ]
    old, new = monitor(runs, window=2)
    assert (old.artifact_hash, old.runs, old.feedback, old.score) == ("old", 3, 3, 0.0)
    assert (new.runs, new.errors, new.feedback, new.score) == (2, 1, 1, 1.0)
    assert old.latency == 1.5 and old.tokens == 24.0
    reply = new.nodes["reply"]
    assert reply.runs == 2 and reply.errors == 1 and reply.seconds == 1.5 and reply.tokens == 12.0
    assert old.nodes["extract"].score == 0.0 and monitor(runs, window=3)[0].nodes["extract"].score == pytest.approx(
        1 / 3
    )
    text = table([old, new])
    assert text.splitlines()[0].split() == [
        "artifact",
        "/",
        "node",
        "runs",
        "errors",
        "feedback",
        "fixed",
        "score",
        "seconds",
        "tokens",
    ]
    assert any(line.startswith("  reply") for line in text.splitlines())
    assert "new" in text and "-" in table(monitor([_run("x", None)]))


def test_plot_writes_a_png(tmp_path: Path) -> None:
    target = plot([_run("a", 1.0), _run("b", 0.0), _run("a", None)], tmp_path / "plots" / "score.png", window=5)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot([], tmp_path / "empty.png").is_file()  # no feedback yet: an empty plot, not an error
