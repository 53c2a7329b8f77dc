"""`microprompts monitor` and `microprompts reoptimize` on a run store of the simulated topic task."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import microprompts.cli.monitor
from microprompts.cli import main
from microprompts.flows import Flow
from microprompts.serve import RunRecord, RunStore
from tests.optimizers import engine_helpers as h


def _deploy(tmp_path: Path) -> tuple[str, str]:
    path = tmp_path / "deployed.json"
    content_hash = h.topic_flow().save(str(path))
    return str(path), content_hash


def _store(tmp_path: Path, artifact_hash: str, n: int = 12, score: float = 0.0) -> str:
    """Runs that answered `world` every time; feedback corrects the wrong ones (score 0 with the right label)."""
    path = tmp_path / "runs.sqlite"
    store = RunStore(path)
    for i, row in enumerate(h.rows(0, n)):
        run_id = f"r{i}"
        traces = [{"node": "classify", "seconds": 0.1, "usage": {"prompt_tokens": 30, "completion_tokens": 3}}]
        outputs = {"label": "world"}
        store.record(
            RunRecord(
                run_id=run_id,
                created=float(i),
                flow="topic",
                artifact_hash=artifact_hash,
                inputs=dict(row.inputs),
                outputs=outputs,
                traces=traces,
                latency=0.1,
            )
        )
        right = row.output == outputs
        note = None if right else json.dumps({"output": row.output})
        store.add_feedback(run_id, 1.0 if right else score, note)
    store.close()
    return str(path)


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_monitor_prints_a_table_and_writes_a_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, content_hash = _deploy(tmp_path)
    store = _store(tmp_path, content_hash)
    code, out, err = _cli(capsys, "monitor", store, "--window", "4")
    assert code == 0, err
    assert content_hash[:25] in out and "classify" in out
    assert (tmp_path / "runs.png").read_bytes()[:4] == b"\x89PNG"
    code, out, _ = _cli(capsys, "monitor", store, "--json", "--plot", str(tmp_path / "p.png"))
    (artifact,) = json.loads(out)["artifacts"]
    assert artifact["runs"] == 12 and artifact["feedback"] == 12 and artifact["nodes"]["classify"]["tokens"] == 33


def test_bad_stores_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"\x00garbage" * 100)
    for args in (["monitor", str(corrupt)], ["monitor", str(tmp_path / "none.sqlite")]):
        code, _, err = _cli(capsys, *args)
        assert code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1
    RunStore(tmp_path / "empty.sqlite").close()
    code, _, err = _cli(capsys, "monitor", str(tmp_path / "empty.sqlite"))
    assert code == 2 and "holds no runs" in err


def test_reoptimize_does_nothing_while_the_score_holds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deployed, content_hash = _deploy(tmp_path)
    store = _store(tmp_path, content_hash, score=1.0)  # every run scored 1 (corrections aside)
    out = tmp_path / "new.json"
    code, stdout, err = _cli(capsys, "reoptimize", store, "--from", deployed, "--below", "0.5", "--out", str(out))
    assert code == 0, err
    assert json.loads(stdout)["reoptimized"] is False and "nothing to do" in err and not out.exists()


@pytest.fixture
def simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    model = h.model("reopt")
    monkeypatch.setattr(microprompts.cli.monitor, "resolve_model", lambda spec, *a, **k: model)


@pytest.mark.usefixtures("simulated")
def test_reoptimize_writes_a_flow_that_beats_the_deployed_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed, content_hash = _deploy(tmp_path)
    store = _store(tmp_path, content_hash, n=18)
    out = tmp_path / "new.json"
    args = ["reoptimize", store, "--from", deployed, "--below", "0.9", "--window", "10", "--out", str(out)]
    code, stdout, err = _cli(capsys, *args, "--metric", "exact_match:label", "--model", "sim", "--budget-calls", "400")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["reoptimized"] and summary["rows"] == 18 and summary["held_out"] == 6
    assert summary["new"] > summary["deployed"] and summary["written"] == str(out)
    assert Flow.load(str(out)).content_hash() != content_hash


@pytest.mark.usefixtures("simulated")
def test_reoptimize_keeps_the_deployed_flow_when_the_new_one_does_not_win(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    deployed, content_hash = _deploy(tmp_path)
    store = _store(tmp_path, content_hash)

    class Tie:
        best = h.topic_flow()
        test_baseline = test_best = 0.5

    def fake_optimize(*args: Any, **kwargs: Any) -> Tie:
        return Tie()

    monkeypatch.setattr(microprompts.cli.monitor, "optimize", fake_optimize)
    out = tmp_path / "new.json"
    code, stdout, err = _cli(capsys, "reoptimize", store, "--from", deployed, "--below", "0.9", "--out", str(out))
    assert code == 0, err
    assert json.loads(stdout)["written"] is None and "kept the deployed artifact" in err and not out.exists()
