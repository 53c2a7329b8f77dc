"""Run directories: resume after a crash ends like an uninterrupted run and pays no call twice; a warm re-run pays
nothing; a different run is refused; a torn journal line is repaired."""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from microprompts.evals import exact_match
from microprompts.flows import Flow
from microprompts.optimizers import BeamSearch, Budget, RegularizedEvolution, ResumeError, optimize
from microprompts.testing import SimulatedChatModel
from tests.optimizers import engine_helpers as h


class Crash(BaseException):
    """Stands in for a kill: not an Exception, so nothing on the way catches it."""


def crash_after(n: int) -> Any:
    count = itertools.count(1)
    lock = threading.Lock()

    def hook() -> None:
        with lock:
            if next(count) > n:
                raise Crash(f"crash after {n} calls")

    return hook


def _args(search: Any) -> dict[str, Any]:
    return dict(
        train=h.rows(0, 10),
        dev=h.rows(100, 10),
        test=h.rows(200, 6),
        metric=exact_match("label"),
        mutators=h.search_mutators(),
        search=search,
        minibatch=5,
        progress=False,
        budget=Budget(calls=120),
    )


def _requests(model: SimulatedChatModel) -> list[str]:
    return [
        json.dumps([[[m.type, str(m.content)] for m in c.messages], sorted(c.kwargs.items())], default=str)
        for c in model.calls
    ]


def _events(run_dir: Path) -> list[tuple[str, Any]]:
    lines = (run_dir / "journal.jsonl").read_text().splitlines()
    return [(e["event"], e.get("id")) for e in map(json.loads, lines)]


def _flow() -> Flow:
    return h.topic_flow()


@pytest.mark.parametrize(
    ("search", "crash_at"),
    [
        (BeamSearch(beam_width=2, depth=3, mutations_per_candidate=4), 7),  # inside the baseline
        (BeamSearch(beam_width=2, depth=3, mutations_per_candidate=4), 45),
        (RegularizedEvolution(population=4, sample_size=2, cycles=12), 80),
    ],
)
def test_resume_after_a_crash_matches_an_uninterrupted_run(tmp_path: Path, search: Any, crash_at: int) -> None:
    reference_model = h.model("reference")
    reference = optimize(_flow(), model=reference_model, run_dir=tmp_path / "a", **_args(search))
    assert reference.usage["calls"] > crash_at
    model = h.model("crashing")
    with pytest.raises(Crash):
        optimize(_flow(), model=model, run_dir=tmp_path / "b", before_call=crash_after(crash_at), **_args(search))
    assert model.call_count <= crash_at
    resumed = optimize(_flow(), model=model, run_dir=tmp_path / "b", resume=True, **_args(search))
    assert resumed.best_candidate.id == reference.best_candidate.id
    assert (tmp_path / "b" / "best.json").read_text() == (tmp_path / "a" / "best.json").read_text()
    assert _events(tmp_path / "b") == _events(tmp_path / "a")
    assert resumed.summary()["best_test"] == reference.summary()["best_test"]
    requests = _requests(model)
    assert len(requests) == len(set(requests)), "a model call was paid twice"
    assert model.call_count == reference_model.call_count


def test_rerunning_a_finished_run_makes_no_model_calls(tmp_path: Path) -> None:
    search = BeamSearch(beam_width=2, depth=2, mutations_per_candidate=3)
    model = h.model()
    first = optimize(_flow(), model=model, run_dir=tmp_path / "run", **_args(search))
    paid = model.call_count
    assert paid > 0
    again = optimize(_flow(), model=model, run_dir=tmp_path / "run", resume=True, **_args(search))
    assert model.call_count == paid and again.usage["calls"] == 0
    assert again.best_candidate.id == first.best_candidate.id
    fresh = optimize(_flow(), model=model, run_dir=tmp_path / "run", **_args(search))  # start over, warm cache
    assert model.call_count == paid and fresh.usage["calls"] == 0 and fresh.usage["cached_calls"] > 0
    assert fresh.best_candidate.id == first.best_candidate.id
    for name in ("best.json", "journal.jsonl", "report.html", "summary.json", "run.json", "evaluations.jsonl"):
        assert (tmp_path / "run" / name).is_file(), name
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["best_id"] == first.best_candidate.id


def test_a_warm_shared_cache_without_run_dir_makes_no_model_calls() -> None:
    search = BeamSearch(beam_width=1, depth=2, mutations_per_candidate=3)
    model = h.model()
    first = optimize(_flow(), model=model, **_args(search))
    paid = model.call_count
    second = optimize(_flow(), model=model, **_args(search))
    assert model.call_count == paid and second.usage["calls"] == 0
    assert second.best_candidate.id == first.best_candidate.id


def test_resume_refuses_a_different_run(tmp_path: Path) -> None:
    search = BeamSearch(beam_width=1, depth=1, mutations_per_candidate=2)
    optimize(_flow(), model=h.model(), run_dir=tmp_path, **_args(search))
    with pytest.raises(ResumeError, match="seed"):
        optimize(_flow(), model=h.model(), run_dir=tmp_path, resume=True, seed=1, **_args(search))
    with pytest.raises(ValueError, match="run_dir"):
        optimize(_flow(), model=h.model(), resume=True, **_args(search))


def test_a_torn_last_journal_line_is_repaired(tmp_path: Path) -> None:
    search = BeamSearch(beam_width=1, depth=2, mutations_per_candidate=3)
    model = h.model()
    first = optimize(_flow(), model=model, run_dir=tmp_path, **_args(search))
    journal = tmp_path / "journal.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    journal.write_text("".join(lines[:3]) + lines[3][:20])
    evaluations = tmp_path / "evaluations.jsonl"
    evaluations.write_bytes(evaluations.read_bytes()[:-30])
    paid = model.call_count
    again = optimize(_flow(), model=model, run_dir=tmp_path, resume=True, **_args(search))
    assert again.best_candidate.id == first.best_candidate.id and model.call_count == paid
    assert [json.loads(x)["seq"] for x in journal.read_text().splitlines()] == list(range(len(lines)))


def test_resuming_an_empty_directory_starts_fresh(tmp_path: Path) -> None:
    result = optimize(
        _flow(),
        model=h.model(),
        run_dir=tmp_path / "new",
        resume=True,
        **_args(BeamSearch(beam_width=1, depth=1, mutations_per_candidate=2)),
    )
    assert (tmp_path / "new" / "best.json").is_file() and result.history[0]["status"] == "baseline"
