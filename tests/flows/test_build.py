"""Building, validating, viewing and compiling flows."""

from __future__ import annotations

import networkx as nx
import pytest
from langgraph.graph import END, START
from langgraph.graph.state import CompiledStateGraph

from microprompts import Flow, FlowValidationError, FunctionNode, MicroPrompt, ModelCaller
from microprompts.flows import RouterError
from tests.flows.helpers import ANSWER, CLASSIFY, ESCALATE, route_by_label, route_nowhere, shout, triage_flow
from tests.flows.helpers import triage_model as model


def caller() -> ModelCaller:
    return ModelCaller(cache=None, base_delay=0.0)


def test_then_chains_nodes_from_start():
    shouting = FunctionNode("shout", shout, reads=["reply"], writes=["reply"])
    flow = Flow("chain").then(ANSWER).then(shouting)
    assert flow.edges == ((START, "answer"), ("answer", "shout"))
    assert flow.input_keys == ("text",) and flow.output_keys == ("reply",)
    out = flow.compile(model=model(), caller=caller()).invoke({"text": "hi"})
    assert out == {"text": "hi", "reply": "RE: HI"}


def test_builder_methods_return_new_flows_and_leave_the_original_alone():
    empty = Flow("f")
    one = empty.add(ANSWER)
    assert empty.nodes == {} and list(one.nodes) == ["answer"]
    two = one.edge(START, "answer")
    assert one.edges == () and two.edges == ((START, "answer"),)
    assert two.replace_node(ANSWER.with_params(temperature=0.5)).nodes["answer"].params.temperature == 0.5
    assert two.nodes["answer"].params.temperature == 0.0


def test_duplicate_and_reserved_node_names_are_refused():
    with pytest.raises(ValueError, match="already has a node named 'answer'"):
        Flow("f").add(ANSWER).add(ANSWER)
    with pytest.raises(ValueError, match="reserved"):
        Flow("f").add(ANSWER.replace(name=END))
    with pytest.raises(KeyError, match="no node 'nope'"):
        Flow("f").replace_node(ANSWER.replace(name="nope"))
    with pytest.raises(TypeError, match="router must be callable"):
        Flow("f").add(ANSWER).branch("answer", "not callable", {})  # type: ignore[arg-type]


def test_compile_returns_a_langgraph_compiled_state_graph():
    graph = triage_flow().compile(model=model(), caller=caller())
    assert isinstance(graph, CompiledStateGraph)
    assert set(graph.get_graph().nodes) == {START, END, "classify", "answer", "escalate"}


@pytest.mark.parametrize(
    "text, reply, label",
    [
        ("the server is on fire", "ESCALATED: the server is on fire", "urgent"),
        ("how do I log in", "re: how do I log in", "normal"),
    ],
)
def test_branch_routes_on_the_router_label(text, reply, label):
    fake = model()
    out = triage_flow().compile(model=fake, caller=caller()).invoke({"text": text})
    assert out == {"text": text, "label": label, "reply": reply}
    assert fake.call_count == (1 if label == "urgent" else 2)


def test_a_router_label_outside_the_mapping_raises_router_error():
    flow = (
        Flow("f")
        .add(CLASSIFY)
        .add(ANSWER)
        .edge(START, "classify")
        .branch("classify", route_nowhere, {"normal": "answer"})
    )
    with pytest.raises(RouterError, match="returned 'mystery'; expected one of \\['normal'\\]"):
        flow.compile(model=model(), caller=caller()).invoke({"text": "x"})


# --- validation ----------------------------------------------------------------------------------------------
def problems(flow: Flow) -> str:
    with pytest.raises(FlowValidationError) as info:
        flow.validate()
    return str(info.value)


def test_valid_flows_validate_quietly():
    assert triage_flow().validate().name == "triage"


def test_empty_flow_is_invalid():
    assert "it has no nodes" in problems(Flow("empty"))


def test_missing_start_edge_is_reported():
    assert "no edge from START" in problems(Flow("f").add(ANSWER))


def test_input_that_no_upstream_node_provides_is_reported():
    flow = Flow("f", inputs=["question"]).then(ANSWER)
    assert "node 'answer' reads 'text', which no upstream node or flow input provides" in problems(flow)


def test_input_written_only_downstream_is_reported():
    shouting = FunctionNode("shout", shout, reads=["reply"], writes=["reply"])
    needs_reply = MicroPrompt("critique", task="Critique.", inputs=["reply"])
    flow = Flow("f").then(needs_reply).then(shouting).then(ANSWER)
    message = problems(flow)
    assert "node 'critique' reads 'reply', which only ['shout', 'answer'] write(s), after it runs" in message


def test_unreachable_node_is_reported():
    flow = Flow("f").then(ANSWER).add(ESCALATE)
    assert "node 'escalate' is unreachable from START" in problems(flow)


def test_branch_to_a_missing_node_is_reported():
    flow = Flow("f").then(CLASSIFY).branch("classify", route_by_label, {"urgent": "ghost", "normal": END})
    assert "branch 'classify' label 'urgent' targets unknown node 'ghost'" in problems(flow)


def test_branch_from_a_missing_node_and_edge_to_one_are_reported():
    flow = Flow("f").then(CLASSIFY).edge("classify", "nowhere").branch("ghost", route_by_label, {"x": END})
    message = problems(flow)
    assert "edge classify -> nowhere names unknown node 'nowhere'" in message
    assert "branch from unknown node 'ghost'" in message


def test_backwards_edges_are_reported():
    assert "runs backwards through START/END" in problems(Flow("f").then(ANSWER).edge("answer", START))


def test_cycle_with_no_way_out_is_reported():
    shouting = FunctionNode("shout", shout, reads=["reply"], writes=["reply"])
    flow = Flow("f").then(ANSWER).then(shouting).edge("shout", "answer")
    assert "cycle answer -> shout -> answer has no way out to END" in problems(flow)


def test_a_node_leading_into_a_closed_cycle_is_not_reported_as_a_cycle_itself():
    shouting = FunctionNode("shout", shout, reads=["reply"], writes=["reply"])
    again = FunctionNode("again", shout, reads=["reply"], writes=["reply"])
    flow = Flow("f").then(ANSWER).then(shouting).then(again).edge("again", "shout")
    message = problems(flow)
    assert "cycle again -> shout -> again has no way out to END" in message
    assert "cycle answer" not in message


def test_a_cycle_with_a_branch_out_is_valid():
    flow = (
        Flow("loop").then(CLASSIFY).then(ANSWER).branch("answer", route_by_label, {"urgent": "classify", "normal": END})
    )
    flow.validate()


def test_every_problem_is_listed_in_one_error():
    flow = Flow("f").add(ANSWER).add(ESCALATE).edge(START, "answer").edge("answer", "ghost")
    message = problems(flow)
    assert message.startswith("flow 'f' is invalid: ") and "ghost" in message


# --- views ---------------------------------------------------------------------------------------------------
def test_networkx_control_graph_has_edges_branches_and_implicit_ends():
    graph = triage_flow().graph()
    assert isinstance(graph, nx.DiGraph)
    assert graph.edges[START, "classify"]["kind"] == "edge"
    assert graph.edges["classify", "escalate"] == {"kind": "branch", "label": "urgent"}
    assert graph.edges["answer", END]["kind"] == "implicit"


def test_networkx_dependency_graph_links_writers_to_readers_by_key():
    shouting = FunctionNode("shout", shout, reads=["reply"], writes=["reply"])
    deps = Flow("f").then(ANSWER).then(shouting).dependencies()
    assert list(deps.edges(data=True)) == [("answer", "shout", {"key": "reply"})]


def test_draw_mermaid_names_every_node_and_branch_label():
    text = triage_flow().draw_mermaid()
    assert text.startswith("---") or "graph TD" in text
    for name in ("classify", "answer", "escalate", "urgent", "normal"):
        assert name in text


def test_micro_prompts_lists_only_prompt_nodes():
    assert [n.name for n in triage_flow().micro_prompts()] == ["classify", "answer"]


def test_state_schema_covers_every_key():
    schema = triage_flow().state_schema()
    assert set(schema.__annotations__) == {"text", "label", "reply"}


def test_keys_missing_from_a_user_state_schema_are_reported():
    from typing import TypedDict

    class OnlyText(TypedDict, total=False):
        text: str
        reply: str

    flow = Flow("f", state=OnlyText).then(CLASSIFY).then(ANSWER)
    assert "node 'classify' writes ['label'], which the state schema OnlyText does not declare" in problems(flow)


@pytest.mark.parametrize("kind", ["typeddict", "pydantic", "dataclass"])
def test_a_complete_user_state_schema_of_any_kind_validates_and_runs(kind):
    import dataclasses
    from typing import TypedDict

    from pydantic import BaseModel

    if kind == "typeddict":

        class S(TypedDict, total=False):
            text: str
            label: str
            reply: str

        state = S
    elif kind == "pydantic":
        state = type(
            "S",
            (BaseModel,),
            {"__annotations__": {"text": str, "label": str | None, "reply": str | None}, "label": None, "reply": None},
        )
    else:
        state = dataclasses.make_dataclass("S", [("text", str), ("label", str, None), ("reply", str, None)])
    flow = Flow("f", state=state).then(CLASSIFY).then(ANSWER)
    out = flow.compile(model=model(), caller=caller()).invoke({"text": "hi"})
    assert (out["label"], out["reply"]) == ("normal", "re: hi")


def test_a_self_loop_with_no_way_out_is_reported():
    shouting = FunctionNode("shout", shout, reads=["reply"], writes=["reply"])
    flow = Flow("f").then(ANSWER).then(shouting).edge("shout", "shout")
    assert "cycle shout -> shout has no way out to END" in problems(flow)
