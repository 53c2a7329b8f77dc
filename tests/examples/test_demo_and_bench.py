"""The demo and the overhead benchmark run (on scripted and instant fake models) and report what they promise; the
optimize benchmark's tasks split their data as they say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import microprompts.nodes.runtime as runtime
from benchmarks import overhead
from benchmarks.tasks.optimize_tasks import SHARED_DATA, TASKS
from examples import demo
from microprompts.data import Dataset
from tests.examples.oracles import intake_oracle

ROOT = Path(__file__).resolve().parents[2]


def test_demo_optimizes_reports_saves_and_shows_a_case_it_fixed(monkeypatch, capsys, tmp_path):
    rows = []
    for split in ("train", "dev", "test"):
        rows += [json.loads(line) for line in (ROOT / f"examples/intake/data/{split}.jsonl").read_text().splitlines()]
    model = intake_oracle(rows)
    monkeypatch.setattr(runtime, "resolve_model", lambda spec, *args, **kwargs: model)
    # One copy of the model: with two, the executor builds the embedded model itself, and the rows would run on it
    # rather than on the oracle (slowly, and on what SmolLM2 happens to answer).
    monkeypatch.setattr(demo, "REPLICAS", 1)
    out_dir = tmp_path / "run"
    assert demo.main(["--budget-calls", "300", "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    seed_line = next(line for line in out.splitlines() if line.startswith("seed "))
    best_line = next(line for line in out.splitlines() if line.startswith("optimized "))
    seed_test, best_test = float(seed_line.split()[2]), float(best_line.split()[2])
    assert seed_test < 0.5 < best_test  # the oracle answers right only once its prompt shows examples
    assert (out_dir / "best.json").is_file() and (out_dir / "report.html").is_file()
    shown = json.loads(out.split("gets right:\n", 1)[1].split("\n\nsaved", 1)[0])
    assert shown["optimized"] == shown["expected"] != shown["seed"]
    test_rows = [json.loads(line) for line in (ROOT / "examples/intake/data/test.jsonl").read_text().splitlines()]
    assert shown["ticket"] == test_rows[0]["inputs"]["ticket"] or shown["ticket"] in {
        r["inputs"]["ticket"] for r in test_rows
    }
    assert "prompt diff" in out
    assert model.calls, "the oracle answered no call: the rows ran on another model"


def test_overhead_benchmark_writes_its_json(tmp_path, capsys):
    out = tmp_path / "overhead.json"
    assert overhead.main(["--invocations", "5", "--repeats", "2", "--no-model", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    o = data["overhead"]
    assert o["microprompts_us"] > 0 and o["langgraph_us"] > 0
    assert abs(o["ratio"] - o["microprompts_us"] / o["langgraph_us"]) < 0.01
    assert len(o["samples_us"]["microprompts"]) == len(o["samples_us"]["langgraph"]) == 2
    assert data["embedded_model"] is None
    assert "ratio" in capsys.readouterr().out


def _yes(rows) -> int:
    return sum(str(r.output["answer"]).lower() == "yes" for r in rows)


@pytest.mark.skipif(not (SHARED_DATA / "bbh").is_dir(), reason="../shared/data absent (the benchmark data)")
@pytest.mark.parametrize("task", ["navigate", "sports_understanding", "implicatures"])
def test_benchmark_yes_no_tasks_split_dev_and_test_by_label(task):
    """A model that answers one label everywhere scores alike on dev and on the pool test comes from: the yes/no
    tasks' splits are stratified (sports' unstratified dev was 63% yes, its test 42%)."""
    splits = TASKS[task].splits(30, 50, 0)
    if task == "implicatures":  # dev is sampled from the file's d_val, test from its d_test
        ds = Dataset.load(
            SHARED_DATA / "sammo_instruction_tuning" / "implicatures.json",
            map={"input": "inputs.dialogue", "output": "output.answer"},
        )
        dev_pool, test_pool = list(ds.dev or []), list(ds.test or [])
    else:
        dev_pool = test_pool = splits.train + splits.dev + splits.test
    assert len(splits.dev) == 30 and len(splits.test) == 50
    assert abs(_yes(splits.dev) - 30 * _yes(dev_pool) / len(dev_pool)) <= 1
    assert abs(_yes(splits.test) - 50 * _yes(test_pool) / len(test_pool)) <= 1
