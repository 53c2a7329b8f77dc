"""A small real optimization on the simulated topic task, for the report tests: a two-node pipeline searched by beam
under a call budget too small to reach a perfect score (so the best candidate still fails some dev rows)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from microprompts.data import Row
from microprompts.evals import exact_match
from microprompts.flows import Flow
from microprompts.optimizers import BeamSearch, Budget, OptimizeResult, optimize
from tests.optimizers import engine_helpers as h


def small_run(
    run_dir: Path,
    *,
    flow: Flow | None = None,
    metric: Any = None,
    dev: list[Row] | None = None,
    calls: int = 70,
) -> OptimizeResult:
    """Optimize the pipeline (or `flow`) on 10 dev rows under `calls` task-model calls; writes report.html."""
    return optimize(
        flow or h.pipeline(),
        train=h.rows(0, 10),
        dev=dev or h.rows(100, 10),
        metric=metric or exact_match("label"),
        model=h.model(),
        search=BeamSearch(beam_width=2, depth=3, mutations_per_candidate=4),
        mutators=h.search_mutators(),
        seed=0,
        minibatch=5,
        budget=Budget(calls=calls),
        run_dir=run_dir,
        progress=False,
    )
