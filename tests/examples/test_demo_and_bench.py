"""The demo and the overhead benchmark run (on scripted and instant fake models) and report what they promise."""

from __future__ import annotations

import json
from pathlib import Path

import microprompts.nodes.runtime as runtime
from benchmarks import overhead
from examples import demo
from tests.examples.oracles import seats_oracle

ROOT = Path(__file__).resolve().parents[2]


def test_demo_prints_a_table_and_a_sample(monkeypatch, capsys):
    rows = [json.loads(line) for line in (ROOT / "examples/seats/data/test.jsonl").read_text().splitlines()]
    model = seats_oracle(rows)
    monkeypatch.setattr(runtime, "resolve_model", lambda spec, *args, **kwargs: model)
    assert demo.optimize_step(demo.seats_flow, demo.load_splits(), "local") is None
    assert demo.main(["--limit", "4"]) == 0
    out = capsys.readouterr().out
    assert "score" in out and "calls" in out and "tokens" in out and "seconds" in out
    seed_line = next(line for line in out.splitlines() if line.startswith("seed "))
    assert seed_line.split()[1:3] == ["1.000", "4"]
    assert '"predicted"' in out and '"expected"' in out


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
