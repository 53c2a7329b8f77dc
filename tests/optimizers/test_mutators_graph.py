"""Graph-structure mutators: children validate, compile, run end to end and round-trip as artifacts; they touch
only what they declare; removal is conservative; frozen parts stay put."""

from __future__ import annotations

from pathlib import Path

import pytest
from langgraph.graph import END, START

from microprompts.flows import Flow
from microprompts.flows.address import check_mutation
from microprompts.nodes import MicroPrompt
from microprompts.optimizers.candidate import Candidate
from microprompts.optimizers.mutators.graph import (
    InsertCheck,
    RemoveNode,
    SplitNode,
    Vote,
    graph_mutators,
    insert_check,
    removable,
    remove_node,
    split_node,
)
from microprompts.testing import ScriptedChatModel
from tests.optimizers.mutator_helpers import (
    EXTRACT,
    REPLY,
    Gloss,
    Topic,
    branchy,
    make_ctx,
    pipeline,
    rows,
    run,
)

GLOSS = MicroPrompt("gloss", task="Gloss the text.", inputs={"text": "A news text."}, output=Gloss)
REPLY_READING_TOPIC = REPLY.replace(inputs={"topic": "The topic."})


def with_dead_end(flow: Flow) -> Flow:
    """`flow` plus `gloss` after extract: it writes `gloss`, which nothing reads and no row expects."""
    return flow.add(GLOSS).edge("extract", "gloss")


def _roundtrip(flow: Flow, tmp_path: Path) -> None:
    path = tmp_path / "child.json"
    digest = flow.save(str(path))
    loaded = Flow.load(str(path), allow=["microprompts", "tests"])
    assert loaded.content_hash() == digest == flow.content_hash()


@pytest.mark.parametrize(
    "make_flow", [pipeline, branchy, lambda: with_dead_end(pipeline())], ids=["chain", "branchy", "dead_end"]
)
@pytest.mark.parametrize("mutator", graph_mutators(), ids=lambda m: m.name)
def test_children_validate_run_and_touch_only_what_they_declare(mutator, make_flow, tmp_path: Path) -> None:
    flow = make_flow()
    ctx = make_ctx(None)
    children = mutator.propose(Candidate(flow), ctx, n=10)
    if mutator.name == "remove_node":
        assert [m.note for _, m in children] == (
            ["removed gloss, whose outputs nothing reads"] if "gloss" in flow.nodes else []
        )
    else:
        assert len(children) == len(flow.micro_prompts())  # one per eligible node, each distinct
    baseline = run(flow, rows(), "right").score
    for child, mutation in children:
        assert mutation.operator == mutator.name and mutation.kind == "graph"
        check_mutation(flow, child, mutator.addresses(flow), ctx.frozen)
        child.validate()
        result = run(child, rows(), "right")
        assert result.errors == 0 and result.score == baseline, mutation.note
        _roundtrip(child, tmp_path)


def test_insert_check_sits_between_the_node_and_its_successors_in_a_branchy_flow() -> None:
    flow = branchy()
    child = insert_check(flow, "classify")
    assert ("classify", "classify_check") in child.edges
    assert [b.source for b in child.branches] == ["classify_check"]
    check = child.nodes["classify_check"]
    assert isinstance(check, MicroPrompt)
    assert check.reads == ("topic", "label") and check.writes == ("label",)
    result = run(child, rows(), "right")
    order = [[t.node for t in r.traces] for r in result.rows]
    assert order[0] == ["extract", "classify", "classify_check", "reply"]
    assert order[1] == ["extract", "classify", "classify_check", "desk"]
    # a check after the last node ends the flow instead of it
    tail = insert_check(pipeline(), "reply")
    assert ("reply", "reply_check") in tail.edges and not any(a == "reply_check" for a, _ in tail.edges)
    assert run(tail, rows(), "right").score == 1.0


def test_insert_check_revises_a_wrong_draft() -> None:
    """A check node's output replaces the draft: wrong labels from classify are fixed by a right checker."""
    flow = insert_check(pipeline(), "classify")
    child_rows = rows()

    def runs_with(check_right: bool) -> float:
        from microprompts.evals import evaluate
        from microprompts.models import ModelCaller
        from tests.optimizers.mutator_helpers import reply_metric, task_model

        wrong, right = task_model("wrong"), task_model("right")

        def respond(messages):  # the checker is the node whose prompt says "Check a draft"
            model = right if check_right and "Check a draft" in str(messages[0].content) else wrong
            return model.replies(messages)

        return evaluate(
            flow, child_rows, reply_metric, model=ScriptedChatModel(replies=respond), caller=ModelCaller(cache=None)
        ).score

    assert runs_with(check_right=False) == pytest.approx(1 / 3)
    assert runs_with(check_right=True) == 1.0


def test_split_adds_a_planning_node_whose_notes_the_node_reads() -> None:
    child = split_node(pipeline(), "classify")
    plan, node = child.nodes["classify_plan"], child.nodes["classify"]
    assert isinstance(plan, MicroPrompt) and isinstance(node, MicroPrompt)
    assert plan.reads == ("topic",) and plan.writes == ("classify_notes",)
    assert node.reads == ("topic", "classify_notes")
    assert ("extract", "classify_plan") in child.edges and ("classify_plan", "classify") in child.edges
    assert ("extract", "classify") not in child.edges
    assert list(child.nodes) == ["extract", "classify_plan", "classify", "reply"]
    first = split_node(branchy(), "reply")  # a branch target: the branch now leads to the plan node
    assert first.branches[0].mapping == {"write": "reply_plan", "desk": "desk"}
    assert run(first, rows(), "right").errors == 0


def test_split_and_insert_pick_names_that_are_free() -> None:
    flow = (
        pipeline()
        .add(MicroPrompt("classify_check", task="x", inputs=["label"], output=Topic))
        .edge("reply", "classify_check")
    )
    child = insert_check(flow, "classify")
    assert "classify_check_2" in child.nodes
    assert InsertCheck().eligible(flow, make_ctx(None)) == ["extract", "reply"]  # classify has a check already


def test_remove_is_conservative() -> None:
    flow = with_dead_end(pipeline())
    assert removable(flow, {"reply"}) == ["gloss"]
    assert removable(flow, {"reply", "gloss"}) == []  # a key the metric needs
    assert removable(flow, set()) == []  # unknown needs: remove nothing
    assert removable(pipeline(), {"reply"}) == []  # every other output is read downstream
    before_branch = branchy().add(GLOSS).edge("extract", "gloss")
    assert removable(before_branch, {"reply"}) == []  # a router after it might read its output
    ctx = make_ctx(None, train=[{"inputs": {"text": "football"}, "output": {}}])
    assert RemoveNode().propose(Candidate(flow), ctx, n=3) == []


def test_remove_rewires_predecessors_to_successors() -> None:
    flow = Flow("chain").then(EXTRACT).then(GLOSS).then(REPLY_READING_TOPIC)
    child = remove_node(flow, "gloss")
    assert child.edges == ((START, "extract"), ("extract", "reply"))
    last = remove_node(with_dead_end(pipeline()), "gloss")
    assert set(last.edges) == {(START, "extract"), ("extract", "classify"), ("classify", "reply")}
    assert END not in {b for _, b in last.edges}  # extract still goes on to classify: no explicit end needed


def test_vote_samples_k_times_above_zero_temperature() -> None:
    flow = pipeline()
    children = Vote(ks=(3,)).propose(Candidate(flow), make_ctx(None), n=1)
    ((child, mutation),) = children
    node = child.nodes[mutation.address.split(".")[0]]
    assert isinstance(node, MicroPrompt)
    assert (node.params.samples, node.params.temperature) == (3, 0.7)
    assert (mutation.before, mutation.after) == (1, 3)
    assert Vote().eligible(child, make_ctx(None)) == sorted(
        {"extract", "classify", "reply"} - {node.name}, key=["extract", "classify", "reply"].index
    )
    frozen = make_ctx(None, frozen=["*.temperature"])
    assert Vote().propose(Candidate(flow), frozen, n=3) == []  # greedy samples would all agree


@pytest.mark.parametrize("pattern", ["graph.nodes", "graph.*", "graph"])
def test_frozen_graph_blocks_structural_mutators(pattern: str) -> None:
    flow = with_dead_end(pipeline())
    ctx = make_ctx(None, frozen=[pattern])
    for mutator in (InsertCheck(), RemoveNode(), SplitNode()):
        assert mutator.propose(Candidate(flow), ctx, n=3) == [], mutator.name
    assert Vote().propose(Candidate(flow), ctx, n=1)  # a parameter change is not a graph change


def test_frozen_node_parts_block_split_and_removal_of_that_node() -> None:
    flow = with_dead_end(pipeline())
    assert RemoveNode().propose(Candidate(flow), make_ctx(None, frozen=["gloss.task"]), n=1) == []
    ctx = make_ctx(None, frozen=["classify.inputs", "extract", "gloss.*"])
    assert {m.note.split()[1] for _, m in SplitNode().propose(Candidate(flow), ctx, n=5)} == {"reply"}


def test_a_flow_with_a_user_state_type_is_not_split() -> None:
    flow = pipeline().evolve(state=dict)
    assert SplitNode().propose(Candidate(flow), make_ctx(None), n=3) == []
    with pytest.raises(ValueError):
        split_node(flow, "classify")


def test_children_of_a_flow_with_a_loop_still_validate() -> None:
    from tests.optimizers.mutator_helpers import route_label

    flow = pipeline().branch("reply", route_label, {"write": "classify", "desk": END})
    made: dict[str, list[Flow]] = {}
    for mutator in graph_mutators():
        for child, _ in mutator.propose(Candidate(flow), make_ctx(None), n=10):
            child.validate()
            check_mutation(flow, child, mutator.addresses(flow))
            made.setdefault(mutator.name, []).append(child)
    assert {k: len(v) for k, v in made.items()} == {"insert_check": 3, "split_node": 3, "vote": 3}
    after_reply = next(c for c in made["insert_check"] if "reply_check" in c.nodes)
    assert after_reply.branches[0].source == "reply_check"  # the loop now leaves from the check node
