"""Where an optimization's wall time goes (issue 24, item 4): the phase clock splits wall time so the shares add up to
1 however many threads overlap, a slow model dominates a run's shares, and a warm re-run spends none in the model."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from microprompts.evals import exact_match
from microprompts.models import phases
from microprompts.models.phases import OTHER, PHASES, PhaseRecording, phase, shares_text
from microprompts.optimizers import Budget, OptimizeResult, optimize
from microprompts.optimizers.result import render_text
from microprompts.testing.latency import LatencyChatModel
from tests.optimizers import engine_helpers as h


def test_overlapping_phases_share_wall_time_by_priority_and_add_up_to_one() -> None:
    recording = PhaseRecording.start()
    in_model, rendered = threading.Event(), threading.Event()

    def call() -> None:
        with phase("model"):
            in_model.set()
            rendered.wait(timeout=10)
            time.sleep(0.01)

    worker = threading.Thread(target=call)
    worker.start()
    assert in_model.wait(timeout=10)
    with phase("rendering"):  # entirely while a model call is in flight: not time the run lost to rendering
        time.sleep(0.01)
    rendered.set()
    worker.join()
    overlapped = recording.seconds()
    with phase("parsing"), phase("parsing"):  # nested: counted once
        time.sleep(0.01)
    seconds = recording.stop()
    shares = recording.shares()

    assert overlapped["rendering"] == 0.0 and overlapped["model"] > 0.0
    assert seconds["parsing"] > 0.0 and seconds["model"] == overlapped["model"]
    assert set(shares) == {*PHASES, OTHER}
    assert sum(shares.values()) == pytest.approx(1.0)
    assert recording.stop() == seconds  # stopped once: later phases are not its
    with phase("model"):
        time.sleep(0.001)
    assert recording.shares() == shares


def test_shares_text_lists_the_phases_with_time_biggest_first_and_other_last() -> None:
    shares = {"model": 0.9, "rendering": 0.02, "parsing": 0.0, "journaling": 0.05, "other": 0.03}
    assert shares_text(shares) == "model 90.0%, journaling 5.0%, rendering 2.0%, other 3.0%"


def _run(run_dir: Path) -> OptimizeResult:
    return optimize(
        h.topic_flow(),
        train=h.rows(0, 6),
        dev=h.rows(100, 6),
        metric=exact_match("label"),
        model=LatencyChatModel(reply='{"label": "sports"}', latency=0.03),
        mutators=h.search_mutators(),
        minibatch=3,
        concurrency=1,
        budget=Budget(calls=18),
        run_dir=run_dir,
        progress=False,
    )


def test_a_slow_model_dominates_the_runs_time_shares_and_a_warm_rerun_spends_none_in_it(tmp_path: Path) -> None:
    result = _run(tmp_path / "run")
    shares = result.time_shares
    assert result.usage["calls"] > 0
    assert sum(shares.values()) == pytest.approx(1.0)
    assert max(shares, key=lambda name: shares[name]) == "model"
    assert shares["model"] > 0.5
    for measured in ("rendering", "parsing", "journaling", "caching"):  # the hooks are in place
        assert shares[measured] > 0.0, measured
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["time_shares"] == {k: round(v, 4) for k, v in shares.items()}
    assert f"wall time: {shares_text(shares)}" in render_text(result)

    (tmp_path / "warm").mkdir()
    shutil.copy(tmp_path / "run" / "calls.sqlite", tmp_path / "warm" / "calls.sqlite")
    warm = _run(tmp_path / "warm")  # the same run on a warm cache: every call a hit, and a hit is not model time
    assert warm.usage["calls"] == 0 and warm.usage["cached_calls"] > 0
    assert warm.time_shares["model"] == 0.0
    assert sum(warm.time_shares.values()) == pytest.approx(1.0)


def test_a_recording_collected_while_its_thread_holds_the_clock_closes_without_a_deadlock() -> None:
    """An optimization hung in `make test` on a fresh clone: a PhaseRecording dropped by an earlier run was collected in
    `_Clock.change` (an allocation under the lock started a collection), and its finalizer waited for that same lock."""
    clock = phases._CLOCK
    listening = clock.listeners
    recording = PhaseRecording.start()
    closed = threading.Event()

    def collect_under_the_lock() -> None:
        with clock.lock:  # where `change` or `_flush` is when a collection runs the finalizer
            recording._finalizer()  # what the garbage collector calls
            closed.set()

    worker = threading.Thread(target=collect_under_the_lock, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert closed.is_set(), "the finalizer waited for a lock its own thread held"
    clock.snapshot()  # the next locked call counts the close
    assert clock.listeners == listening
