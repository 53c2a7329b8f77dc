"""The demo and the overhead benchmark run (on scripted and instant fake models) and report what they promise."""

from __future__ import annotations

import json
from pathlib import Path

import microprompts.nodes.runtime as runtime
from benchmarks import overhead
from examples import demo
from tests.examples.oracles import seats_oracle

ROOT = Path(__file__).resolve().parents[2]


def test_demo_optimizes_reports_saves_and_runs_the_best_flow(monkeypatch, capsys, tmp_path):
    rows = []
    for split in ("train", "dev", "test"):
        rows += [json.loads(line) for line in (ROOT / f"examples/seats/data/{split}.jsonl").read_text().splitlines()]
    model = seats_oracle(rows)
    monkeypatch.setattr(runtime, "resolve_model", lambda spec, *args, **kwargs: model)
    out_dir = tmp_path / "run"
    assert demo.main(["--budget-calls", "40", "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    seed_line = next(line for line in out.splitlines() if line.startswith("seed "))
    best_line = next(line for line in out.splitlines() if line.startswith("optimized "))
    assert seed_line.split()[1:] == ["1.000", "1.000"]  # the oracle is always right
    assert float(best_line.split()[2]) == 1.0
    assert (out_dir / "best.json").is_file() and (out_dir / "report.html").is_file()
    assert '"recommended_seats"' in out and "prompt diff" in out


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
