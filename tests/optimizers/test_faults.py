"""Issue 4's fault acceptance: with the fake OpenAI server failing 20% of calls across 429, 500, timeouts (a hang
past the client's timeout) and garbage (HTTP 200, content that is not JSON), `optimize` completes, no exception
escapes, and it reaches the same best candidate as the fault-free run with the same seed.

How each fault is absorbed: 429, 500 and timeouts are transient, so ModelCaller retries them (the schedule lets at
most one attempt of a request fail, so the retry succeeds) and the reply, the cache and the budget are as if nothing
had happened. Garbage is a reply: it is cached and the node repairs it with one more call, which the simulated task
answers as it would have answered the original request, so the row scores the same. Three things a garbage reply
does change, which is why this test holds only under the conditions it sets up:

- the repair is a new request, charged to the budget: a faulty run whose budget binds stops earlier than the
  fault-free one (so the budget here does not bind, and both runs must end by the search's own depth);
- the bad reply and the repair count in the row's tokens, and ties in full-dev score go to fewer tokens per row, so
  the faulty run may keep another of equally scored candidates in its beam (the search's path may differ; its best
  has not here). Screening ties are broken by prompt size, which a fault does not change;
- the repair itself may draw garbage (1 in 20 here), and then the row fails (one repair, by design) and scores 0
  in the faulty run only. That changes the best only if it lands on rows that decide it; with this schedule's seed it
  does not, and the test checks that every failed row is such a double garbage, nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from microprompts.evals import exact_match
from microprompts.models import client as model_client
from microprompts.models import resolve_model
from microprompts.models import spec as model_spec
from microprompts.optimizers import BeamSearch, Budget, optimize
from microprompts.optimizers.result import OptimizeResult
from tests.fakes.openai_server import GARBAGE_CONTENT, FakeOpenAIServer, FaultSchedule
from tests.optimizers import engine_helpers as h
from tests.optimizers.fake_server_task import topic_responder

CLIENT_TIMEOUT = 0.75  # seconds; a "hang" answers after HANG_SECONDS, so the client times out first
HANG_SECONDS = 1.5
KINDS = ["429", "500", "hang", "garbage"]


@pytest.fixture(autouse=True)
def _fast_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """A short client timeout for models resolved from now on, and short retry backoff (optimize has no knob)."""
    monkeypatch.setenv("MICROPROMPTS_TIMEOUT", str(CLIENT_TIMEOUT))
    monkeypatch.setattr(model_spec, "_RESOLVED", {})  # no model resolved earlier, with another timeout
    original = model_client.ModelCaller.__init__

    def init(self: model_client.ModelCaller, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("base_delay", 0.01)
        original(self, *args, **kwargs)

    monkeypatch.setattr(model_client.ModelCaller, "__init__", init)


def _optimize(server: FakeOpenAIServer, run_dir: Path) -> OptimizeResult:
    model = resolve_model(f"openai:fake-model@{server.base_url}")
    assert model.request_timeout == CLIENT_TIMEOUT
    return optimize(
        h.topic_flow(),
        train=h.rows(0, 10),
        dev=h.rows(100, 10),
        metric=exact_match("label"),
        mutators=h.search_mutators(),
        search=BeamSearch(beam_width=2, depth=3, mutations_per_candidate=4),
        minibatch=5,
        budget=Budget(calls=400),
        model=model,
        run_dir=run_dir,
        seed=0,
        progress=False,
    )


def _row_errors(run_dir: Path) -> list[str]:
    records = map(json.loads, (run_dir / "evaluations.jsonl").read_text().splitlines())
    return [row["error"] for record in records for row in record["results"] if row["error"]]


def test_optimize_under_20_percent_faults_reaches_the_fault_free_best(tmp_path: Path) -> None:
    with FakeOpenAIServer(topic_responder()) as server:
        clean = _optimize(server, tmp_path / "clean")
        assert server.faults_served == {} and server.errors == []

    faults = FaultSchedule(rate=0.2, kinds=KINDS, seed=0, max_faults_per_key=1, hang_seconds=HANG_SECONDS)
    with FakeOpenAIServer(topic_responder(), faults) as server:
        faulty = _optimize(server, tmp_path / "faulty")  # no exception escapes
        served, log, errors = server.faults_served, server.log, server.errors

    assert errors == []
    assert set(served) == set(KINDS), f"every kind of fault must have been served at least once: {served}"
    share = sum(served.values()) / sum(1 for record in log if record.attempt == 0)
    assert 0.08 < share < 0.32, f"about a fifth of the requests should have failed once, not {share:.2f}"
    transient = served["429"] + served["500"] + served["hang"]
    assert faulty.usage["failures"] >= transient, "every 429, 500 and timeout is a failed attempt, then retried"
    assert clean.usage["failures"] == 0

    # Both runs ran the search to its end: a binding budget would stop the faulty one earlier (repairs are charged).
    assert clean.stopped is None and faulty.stopped is None

    assert faulty.best.content_hash() == clean.best.content_hash()
    assert faulty.best_candidate.id == clean.best_candidate.id
    assert faulty.best_score == clean.best_score and faulty.baseline_score == clean.baseline_score
    assert (tmp_path / "faulty" / "best.json").read_text() == (tmp_path / "clean" / "best.json").read_text()
    assert clean.best_score > clean.baseline_score, "the task must leave the search something to find"

    assert _row_errors(tmp_path / "clean") == []
    for error in _row_errors(tmp_path / "faulty"):  # only a garbage reply whose repair drew garbage too
        assert error.startswith("OutputParseError") and GARBAGE_CONTENT[:20] in error, error
