"""The example flows validate, compile, survive an artifact round trip, and run end to end on scripted models."""

from __future__ import annotations

from pathlib import Path

import pytest

from examples.bbh import flow as bbh
from examples.bbh.metric import bbh_metric
from examples.seats.cases import generate as seat_rows
from examples.seats.flow import flow as seats_flow
from examples.seats.metric import seat_metric
from examples.triage.cases import generate_tickets
from examples.triage.flow import finalize, route_by_urgency
from examples.triage.flow import flow as triage_flow
from examples.triage.metric import triage_metric
from microprompts import Flow, ModelCaller, evaluate
from microprompts.data import Dataset
from tests.examples.oracles import bbh_oracle, seats_oracle, triage_oracle

FLOWS = {"seats": seats_flow, "triage": triage_flow, "bbh": bbh.flow}
needs_bbh = pytest.mark.skipif(not (bbh.DATA_DIR / "navigate.jsonl").is_file(), reason="../shared BBH data absent")


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_flows_validate_compile_and_round_trip_through_artifacts(name, tmp_path: Path):
    flow = FLOWS[name].validate()
    graph = flow.compile()
    assert set(flow.nodes) <= set(graph.get_graph().nodes)
    path = tmp_path / f"{name}.json"
    digest = flow.save(str(path))
    loaded = Flow.load(str(path), allow=["microprompts", "examples"])  # the user names the examples package
    assert loaded.content_hash() == digest == flow.content_hash()
    for node in flow.micro_prompts():
        assert loaded.nodes[node.name].output is node.output  # the output classes load by import path
        assert loaded.nodes[node.name].output_schema() == node.output_schema()
    loaded.compile()


def test_seat_output_schema_is_constrained_for_small_models():
    schema = seats_flow.nodes["recommend"].output_schema()["properties"]["recommended_seats"]
    assert schema["maxItems"] == 3 and schema["items"]["pattern"].startswith("^(economy|premium|business)")


def test_seats_runs_end_to_end_and_the_metric_penalizes_invented_seats():
    rows = seat_rows(8, seed=11)
    right = evaluate(seats_flow, rows, seat_metric, model=seats_oracle(rows), caller=ModelCaller())
    assert (right.score, right.errors, right.usage.calls) == (1.0, 0, 8)
    wrong = evaluate(seats_flow, rows, seat_metric, model=seats_oracle(rows, wrong=True), caller=ModelCaller())
    assert wrong.errors == 0 and wrong.score < 0.5
    invented = seat_metric(
        rows[0], {"recommended_seats": [*rows[0]["output"]["recommended_seats"][:2], "economy_99A_window"]}
    )
    assert invented.value == pytest.approx(0.5 - 0.25) and "invalid" in invented.feedback


def test_triage_branches_and_scores_each_label():
    tickets = generate_tickets(12, seed=5)
    rows = [t.row() for t in tickets]
    assert {r["output"]["route"] for r in rows} == {"escalate", "reply"}
    result = evaluate(triage_flow, rows, triage_metric, model=triage_oracle(tickets), caller=ModelCaller())
    assert (result.score, result.errors) == (1.0, 0)
    for row, ticket in zip(result.rows, tickets, strict=True):
        nodes = [t.node for t in row.traces]
        branch = "escalate" if ticket.urgency == "urgent" else "reply"
        assert nodes == ["extract", "classify", branch, "finalize"]
        assert row.prediction["route"] == branch
    flipped = triage_oracle(tickets, urgency=lambda t: "normal" if t.urgency == "urgent" else "urgent")
    bad = evaluate(triage_flow, rows, triage_metric, model=flipped, caller=ModelCaller())
    assert bad.score == pytest.approx(1 / 3)  # category right, urgency and team wrong on every row
    assert all("urgency: expected" in r.feedback and "team: expected" in r.feedback for r in bad.rows)


def test_triage_router_and_finalize():
    assert route_by_urgency({"urgency": "urgent"}) == "urgent"
    assert route_by_urgency({"urgency": "normal"}) == route_by_urgency({}) == "normal"
    assert finalize({"urgency": "urgent", "team": "billing"}) == {"route": "escalate", "team": "billing"}
    assert finalize({"urgency": "normal"}) == {"route": "reply", "team": "frontline"}


def test_triage_metric_accepts_raw_dict_rows_and_gives_partial_credit():
    row = {"inputs": {"ticket": "x"}, "output": {"category": "billing", "urgency": "urgent", "team": "billing"}}
    score = triage_metric(row, {"category": "Billing", "urgency": "normal", "team": "frontline"})
    assert score.value == pytest.approx(1 / 3)
    assert score.feedback == "urgency: expected 'urgent', got 'normal'; team: expected 'billing', got 'frontline'"


@needs_bbh
def test_bbh_loads_from_shared_data_in_seeded_splits_and_runs():
    parts = {s: bbh.load(s) for s in ("train", "dev", "test")}
    assert [len(p) for p in parts.values()] == [50, 50, 150]
    ids = [r.id for p in parts.values() for r in p]
    assert len(set(ids)) == 250 and [r.id for r in bbh.load("dev")] == [r.id for r in parts["dev"]]
    rows = list(parts["dev"])[:6]
    assert {r.output["answer"] for r in bbh.load("all")} == {"Yes", "No"}
    result = evaluate(bbh.flow, rows, bbh_metric, model=bbh_oracle(rows), caller=ModelCaller())
    assert (result.score, result.errors) == (1.0, 0)
    enum = bbh.flow.nodes["navigate"].output_schema()["properties"]["answer"]["enum"]
    assert enum == ["Yes", "No"]


def test_bbh_without_shared_data_says_where_it_looked(monkeypatch, tmp_path):
    monkeypatch.setattr(bbh, "DATA_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="shared/data/bbh/navigate.jsonl"):
        bbh.load("dev")
    (tmp_path / "navigate.jsonl").write_text('{"id": "n-0", "input": "q", "target": "Yes"}\n')
    assert bbh.load("all")[0].output == {"answer": "Yes"}
    with pytest.raises(ValueError, match="unknown split"):
        bbh.load("nope")  # type: ignore[arg-type]


def test_committed_splits_load():
    root = Path(__file__).resolve().parents[2] / "examples"
    for example in ("seats", "triage"):
        sizes = [len(Dataset.load(root / example / "data" / f"{s}.jsonl")) for s in ("train", "dev", "test")]
        assert sizes == [40, 30, 40]
