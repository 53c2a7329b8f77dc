"""The engine's shape: building one spends nothing, `start()` scores the baseline; journal events are typed and read
back as written; `Optimizer` holds the settings apart from the data and runs as `optimize` does."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from microprompts import Optimizer as RootOptimizer
from microprompts.evals import exact_match
from microprompts.optimizers import BeamSearch, Budget, Optimizer, SearchEngine, optimize
from microprompts.optimizers.journal import CandidateEvent, RejectedEvent, SkippedEvent, parse_event
from tests.optimizers import engine_helpers as h

METRIC = exact_match("label")


def test_engine_settings_are_frozen() -> None:
    engine = h.engine(h.rows(100, 4), h.model())
    with pytest.raises(dataclasses.FrozenInstanceError):
        engine.settings.seed = 1  # type: ignore[misc]


def test_an_unstarted_engine_has_no_baseline_and_starts_once() -> None:
    model = h.model()
    engine = h.unstarted_engine(h.rows(100, 4), model)
    assert model.call_count == 0 and not engine.journal.entries
    with pytest.raises(RuntimeError, match="start"):
        _ = engine.baseline
    record = engine.start()
    assert engine.baseline is record and record.status == "baseline" and model.call_count == 4
    with pytest.raises(RuntimeError, match="started already"):
        engine.start()


def test_journal_events_read_back_as_written(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = optimize(
        h.topic_flow(),
        train=h.rows(0, 8),
        dev=h.rows(100, 8),
        metric=METRIC,
        model=h.model(),
        mutators=h.search_mutators(),
        budget=Budget(calls=40),
        minibatch=3,
        run_dir=run_dir,
        progress=False,
    )
    kinds = {type(parse_event(e)) for e in result.history}
    assert CandidateEvent in kinds
    for line in (run_dir / "journal.jsonl").read_text().splitlines():
        entry = json.loads(line)
        event = parse_event(entry)
        assert {"seq": entry["seq"], **event.model_dump()} == entry
    for entry in result.history:  # in memory, fields keep their order after seq
        assert list(entry) == ["seq", *type(parse_event(entry)).model_fields]
    statuses = {e["status"] for e in result.history if e["event"] == "candidate"}
    assert statuses <= {"baseline", "promoted", "screened_out", "stopped", "evaluated"}
    with pytest.raises(ValueError):
        parse_event({"event": "candidate", "id": "x", "status": "bogus"})
    assert SkippedEvent(id="a", parent=None, operator=None, reason="r").event == "skipped"
    assert RejectedEvent(parent="a", operator="o", reason="r").event == "rejected"


def test_an_optimizer_runs_as_optimize_does() -> None:
    settings = {
        "search": BeamSearch(beam_width=1, depth=2, mutations_per_candidate=2),
        "seed": 1,
        "minibatch": 4,
        "progress": False,
    }
    optimizer = Optimizer(mutators=h.search_mutators(), **settings)  # type: ignore[arg-type]
    assert RootOptimizer is Optimizer
    with pytest.raises(dataclasses.FrozenInstanceError):
        optimizer.seed = 2  # type: ignore[misc]
    data = {"train": h.rows(0, 8), "dev": h.rows(100, 8), "metric": METRIC}
    first = optimizer.run(h.topic_flow(), **data)  # type: ignore[arg-type]
    second = optimize(
        h.topic_flow(),
        model=None,
        mutators=h.search_mutators(),
        **settings,  # type: ignore[arg-type]
        **data,
    )
    strip = [{k: v for k, v in e.items() if k != "elapsed"} for e in first.history]
    assert strip == [{k: v for k, v in e.items() if k != "elapsed"} for e in second.history]
    with pytest.raises(TypeError):
        optimize(h.topic_flow(), dev=h.rows(100, 4), metric=METRIC, bogus=1)


def test_a_custom_strategy_needs_only_the_search_engine_protocol() -> None:
    seen: list[str] = []

    class OneStep:
        name = "one_step"

        def run(self, engine: SearchEngine) -> None:
            seen.append(engine.baseline.id)
            engine.screen(engine.expand(engine.baseline, 2), engine.baseline)

        def describe(self) -> dict[str, str]:
            return {"name": self.name}

    result = optimize(
        h.topic_flow(),
        train=h.rows(0, 8),
        dev=h.rows(100, 8),
        metric=METRIC,
        model=h.model(),
        mutators=h.search_mutators(),
        search=OneStep(),
        minibatch=4,
        progress=False,
    )
    assert seen == [result.baseline.id] and result.search == {"name": "one_step"}
    assert len([e for e in result.history if e["event"] == "candidate"]) == 3
