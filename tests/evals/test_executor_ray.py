"""The Ray executor on a local Ray started here (2 declared CPUs, no dashboard): the same optimization as the
local executor, and a worker killed mid-call loses no row and charges no call twice. Skipped without Ray (an extra)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from microprompts.evals.executors import as_executor
from microprompts.evals.metrics import exact_match
from microprompts.models import CallCache, ModelCaller
from microprompts.optimizers import BeamSearch, Budget, optimize
from microprompts.optimizers.budget import BudgetedCaller, BudgetTracker
from tests.evals._ray_models import DieOnceModel
from tests.optimizers import engine_helpers as h

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Any:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()


def _optimize(run_dir: Path, executor: str) -> dict[str, Any]:
    result = optimize(
        h.topic_flow(),
        train=h.rows(0, 10),
        dev=h.rows(100, 10),
        test=h.rows(200, 4),
        metric=exact_match("label"),
        model=h.model(),
        search=BeamSearch(2, 3, 4),
        minibatch=5,
        budget=Budget(calls=80),
        run_dir=run_dir,
        progress=False,
        executor=executor,
        replicas=2,
    )
    return result.summary()


def _journal(run_dir: Path) -> list[dict[str, Any]]:
    """The journal without its clock readings."""
    events = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    return [{k: v for k, v in e.items() if k != "elapsed"} for e in events]


def _stopped(actor: Any, within: float = 60.0) -> bool:
    """Whether the actor is dead within `within` seconds. `ray.kill` is asynchronous (ray-project/ray#34917): a call
    sent at once may still be answered (CI saw it); an actor that Ray restarted instead answers until the deadline."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            ray.get(actor.pid.remote(), timeout=within)
        except ray.exceptions.RayActorError:
            return True
        time.sleep(0.2)
    return False


def test_ray_gives_the_same_journal_best_artifact_and_calls_as_local(tmp_path: Path) -> None:
    local = _optimize(tmp_path / "local", "local")
    remote = _optimize(tmp_path / "ray", "ray")
    assert _journal(tmp_path / "ray") == _journal(tmp_path / "local")
    assert (tmp_path / "ray" / "best.json").read_text() == (tmp_path / "local" / "best.json").read_text()
    assert remote["best_id"] == local["best_id"]
    assert remote["calls"] == local["calls"] > 0


def test_a_worker_killed_mid_call_loses_no_row_and_charges_the_call_once(tmp_path: Path) -> None:
    rows, metric = h.rows(0, 8), exact_match("label")
    tracker = BudgetTracker(Budget(calls=8))  # exactly one call a row: a call charged twice would overrun it
    caller = BudgetedCaller(CallCache(tmp_path / "calls.sqlite"), tracker, "task")
    model = DieOnceModel(task=h.TASK, marker=str(tmp_path / "died"))
    with as_executor("ray", replicas=2) as executor:
        result = executor.evaluate(h.topic_flow(), rows, metric, model=model, caller=caller)
        actors = executor.actors()
    assert len(actors) == 2
    assert all(_stopped(actor) for actor in actors)  # closing the executor stopped its actors, for good
    assert (tmp_path / "died").is_file()  # a worker did die, in the middle of a call
    assert result.errors == 0 and [r.index for r in result.rows] == list(range(8))
    reference = as_executor("local").evaluate(
        h.topic_flow(), rows, metric, model=h.model(), caller=ModelCaller(cache=None)
    )
    assert [r.prediction for r in result.rows] == [r.prediction for r in reference.rows]
    assert tracker.total.task_calls == 8 and result.usage.calls == 8
    assert len(CallCache(tmp_path / "calls.sqlite")) == 8
