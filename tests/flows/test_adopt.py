"""Flow.from_graph: adopting a hand-built LangGraph StateGraph that mixes MicroPrompts and plain functions."""

from __future__ import annotations

import pytest
from langgraph.graph import END, START, StateGraph

from microprompts import Flow, FunctionNode, MicroPrompt, ModelCaller
from microprompts.flows.adopt import AdoptError
from tests.flows.helpers import ANSWER, CLASSIFY, TicketState, escalate, route_by_label, triage_model


def hand_built() -> StateGraph:
    builder = StateGraph(TicketState)
    builder.add_node("classify", CLASSIFY)
    builder.add_node("answer", ANSWER)
    builder.add_node("escalate", escalate)
    builder.add_edge(START, "classify")
    builder.add_conditional_edges("classify", route_by_label, {"urgent": "escalate", "normal": "answer"})
    builder.add_edge("answer", END)
    builder.add_edge("escalate", END)
    return builder


def test_from_graph_keeps_micro_prompts_and_wraps_functions():
    flow = Flow.from_graph(hand_built(), name="adopted-triage")
    assert flow.name == "adopted-triage"
    assert flow.nodes["classify"] is CLASSIFY and flow.nodes["answer"] is ANSWER
    assert isinstance(flow.nodes["escalate"], FunctionNode) and flow.nodes["escalate"].fn is escalate
    assert flow.state is TicketState
    (branch,) = flow.branches
    assert (branch.source, branch.router, branch.mapping) == (
        "classify",
        route_by_label,
        {"urgent": "escalate", "normal": "answer"},
    )
    assert set(flow.edges) == {(START, "classify"), ("answer", END), ("escalate", END)}


@pytest.mark.parametrize(
    "text, expected", [("fire in the hall", "ESCALATED: fire in the hall"), ("hello", "re: hello")]
)
def test_adopted_flow_runs_like_the_original_graph(text, expected):
    flow = Flow.from_graph(hand_built())
    out = flow.compile(model=triage_model(), caller=ModelCaller(cache=None)).invoke({"text": text})
    assert out["reply"] == expected


def test_adopted_flow_round_trips_through_an_artifact(tmp_path):
    flow = Flow.from_graph(hand_built())
    flow.save(str(tmp_path / "a.json"))
    loaded = Flow.load(str(tmp_path / "a.json"), allow=["tests"])
    assert loaded.content_hash() == flow.content_hash()
    assert loaded.state is TicketState


def test_a_micro_prompt_added_under_another_name_takes_the_graph_name():
    builder = StateGraph(TicketState)
    builder.add_node("reply_step", ANSWER)
    builder.add_edge(START, "reply_step")
    flow = Flow.from_graph(builder)
    assert isinstance(flow.nodes["reply_step"], MicroPrompt) and flow.nodes["reply_step"].name == "reply_step"


def test_a_branch_without_a_path_map_cannot_be_adopted():
    builder = StateGraph(TicketState)
    builder.add_node("classify", CLASSIFY)
    builder.add_edge(START, "classify")
    builder.add_conditional_edges("classify", route_by_label)
    with pytest.raises(AdoptError, match="has no path map"):
        Flow.from_graph(builder)


def test_only_state_graphs_can_be_adopted():
    with pytest.raises(AdoptError, match="expected a langgraph StateGraph"):
        Flow.from_graph(object())  # type: ignore[arg-type]


def test_a_micro_prompt_runs_as_a_plain_langgraph_node_with_the_model_from_config(tmp_path):
    graph = hand_built().compile()
    model = triage_model()
    out = graph.invoke({"text": "hello"}, config={"configurable": {"model": model}})
    assert out["reply"] == "re: hello" and model.call_count == 2
