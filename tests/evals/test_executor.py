"""The executor seam without Ray: names, the local executor (today's behaviour), and the one error a missing Ray
gives."""

from __future__ import annotations

import sys

import pytest

import microprompts.evals
from microprompts import ModelCaller, evaluate
from microprompts.evals.executor import Executor, ExecutorError, LocalExecutor
from microprompts.evals.executors import as_executor, parse_executor
from microprompts.evals.metrics import exact_match
from microprompts.models.local import LocalChatModel
from tests.optimizers import engine_helpers as h


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [("local", ("local", None)), ("ray", ("ray", None)), ("ray:10.0.0.5:6379", ("ray", "10.0.0.5:6379"))],
)
def test_executor_names_parse(spec: str, parsed: tuple[str, str | None]) -> None:
    assert parse_executor(spec) == parsed


@pytest.mark.parametrize("spec", ["spark", "local:host", "", "dask:x"])
def test_an_unknown_executor_is_one_clear_error(spec: str) -> None:
    with pytest.raises(ExecutorError, match="expected local, ray or ray:ADDRESS"):
        as_executor(spec or "  ")


def test_a_missing_ray_is_one_error_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if Ray were not installed
    monkeypatch.delitem(sys.modules, "microprompts.evals._ray", raising=False)
    monkeypatch.delattr(microprompts.evals, "_ray", raising=False)  # loaded by an earlier test
    with pytest.raises(ExecutorError) as caught:
        as_executor("ray", replicas=2)
    assert "pip install 'microprompts[ray]'" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_local_is_the_default_and_changes_nothing() -> None:
    executor = as_executor(None)
    assert isinstance(executor, LocalExecutor) and executor.describe() == "local"
    model = h.model()
    assert executor.bind(model) is model and executor.bind(None) is None and executor.bind("local") == "local"
    assert executor.workers(4) == 4
    rows, metric = h.rows(0, 6), exact_match("label")
    with executor:
        seam = executor.evaluate(h.topic_flow(), rows, metric, model=model, caller=ModelCaller(cache=None))
    plain = evaluate(h.topic_flow(), rows, metric, model=h.model(), caller=ModelCaller(cache=None))
    assert [r.model_dump(exclude={"seconds", "traces", "usage"}) for r in seam.rows] == [
        r.model_dump(exclude={"seconds", "traces", "usage"}) for r in plain.rows
    ]


def test_an_executor_object_passes_through_and_replicas_are_checked() -> None:
    executor = LocalExecutor(replicas=3)
    assert as_executor(executor, replicas=5) is executor and executor.workers(2) == 3
    with pytest.raises(ExecutorError, match="at least 1"):
        as_executor("local", replicas=0)
    assert isinstance(executor, Executor)


def test_replicas_leave_an_api_model_unchanged() -> None:
    model = h.model()
    assert LocalExecutor(replicas=2).bind(model) is model


def test_local_replicas_copy_the_embedded_model(tmp_path) -> None:
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF")
    bound = LocalExecutor(replicas=2).bind(f"local:{path}")
    assert isinstance(bound, LocalChatModel) and bound.replicas == 2 and bound.model_path == str(path)
    assert LocalExecutor(replicas=1).bind(f"local:{path}") == f"local:{path}"
