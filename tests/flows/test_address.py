"""Addresses, frozen patterns and the mutation check (no model calls)."""

from __future__ import annotations

import pytest

from microprompts.flows import Flow
from microprompts.flows.address import (
    Address,
    MutationViolation,
    address_values,
    check_mutation,
    covers,
    is_frozen,
    normalize_pattern,
    touched,
)
from microprompts.nodes import Example, MicroPrompt, Section
from microprompts.nodes.sections import insert_section
from tests.optimizers import engine_helpers as h


def _rich() -> Flow:
    mp = MicroPrompt(
        "reply",
        task="Answer. Be brief.",
        guidelines=["One.", "Two."],
        inputs={"q": "A question."},
        examples=[Example(inputs={"q": "a"}, output={"output": "b"})],
    )
    extra = Section(kind="guidelines", title="More rules", text="Three.")
    return Flow("rich").then(mp.replace(sections=[*mp.sections, extra]))


def test_every_part_has_an_address() -> None:
    values = address_values(_rich())
    for address in (
        "reply.sections",
        "reply.sections.task",
        "reply.sections.inputs",
        "reply.sections.output_format",
        "reply.sections.examples",
        "reply.sections.guidelines",
        "reply.sections.guidelines#1",
        "reply.params.temperature",
        "reply.params.data_format",
        "reply.params.n_examples",
        "reply.output.reasoning",
        "reply.output.schema",
        "reply.examples",
        "reply.inputs",
        "graph.nodes",
        "graph.edges",
        "graph.state",
    ):
        assert address in values, address
    assert values["reply.sections"] == ["task", "inputs", "output_format", "examples", "guidelines", "guidelines#1"]
    assert "reply.params.reasoning" not in values
    assert "tidy.function" in address_values(h.pipeline())


def test_shorthands_and_patterns() -> None:
    assert normalize_pattern("reply.task") == "reply.sections.task"
    assert normalize_pattern("reply.guidelines#1") == "reply.sections.guidelines#1"
    assert normalize_pattern("reply.temperature") == "reply.params.temperature"
    assert normalize_pattern("reply.reasoning") == "reply.output.reasoning"
    assert normalize_pattern("reply.params.reasoning") == "reply.output.reasoning"
    assert normalize_pattern("reply.examples") == "reply.examples"
    assert normalize_pattern("graph.edges") == "graph.edges"
    assert covers("reply", "reply.sections.task")
    assert covers("reply.sections.guidelines", "reply.sections.guidelines#1")
    assert covers("*.params.*", "reply.params.temperature")
    assert not covers("reply.sections.task", "reply.sections.inputs")
    assert is_frozen("reply.sections.task", ["other", "reply.task"])
    assert not is_frozen("reply.sections.task", ["reply.guidelines"])


def test_touched_finds_exactly_what_changed() -> None:
    flow = _rich()
    assert touched(flow, flow) == set()
    assert touched(flow, flow.set("reply.sections.task", "New task.")) == {"reply.sections.task"}
    assert touched(flow, flow.set("reply.params.temperature", 0.5)) == {"reply.params.temperature"}
    assert touched(flow, flow.set("reply.output.reasoning", True)) == {"reply.output.reasoning"}
    mp = flow.nodes["reply"]
    reordered = flow.replace_node(mp.replace(sections=[mp.sections[1], mp.sections[0], *mp.sections[2:]]))
    assert touched(flow, reordered) == {"reply.sections"}
    dropped = flow.set("reply.sections.guidelines", None)
    assert touched(flow, dropped) == {"reply.sections", "reply.sections.guidelines", "reply.sections.guidelines#1"}


def test_check_mutation_rejects_undeclared_and_frozen_changes() -> None:
    flow = _rich()
    child = flow.set("reply.sections.task", "New task.")
    assert check_mutation(flow, child, ["reply.sections.task"]) == {"reply.sections.task"}
    assert check_mutation(flow, child, ["reply.sections.*"]) == {"reply.sections.task"}
    with pytest.raises(MutationViolation, match="undeclared"):
        check_mutation(flow, child, ["reply.params.temperature"])
    with pytest.raises(MutationViolation, match="frozen"):
        check_mutation(flow, child, ["reply.sections.task"], frozen=["reply.task"])


def test_adding_a_node_is_covered_by_graph_nodes_and_never_frozen() -> None:
    flow = h.topic_flow()
    extra = MicroPrompt("polish", task="Polish.", inputs={"label": "The label."})
    child = flow.then(extra)
    diff = check_mutation(flow, child, ["graph.nodes", "graph.edges"], frozen=["*.sections.task"])
    assert {"graph.nodes", "graph.edges", "polish.sections.task"} <= diff
    with pytest.raises(MutationViolation, match="undeclared"):
        check_mutation(flow, child, ["graph.edges"])
    removed = Flow("topic").then(extra.replace(inputs={"headline": "x"}))
    with pytest.raises(MutationViolation, match="frozen"):
        check_mutation(flow, removed, ["graph.nodes", "graph.edges"], frozen=["classify"])


def test_insert_section_keeps_canonical_order() -> None:
    mp = MicroPrompt("n", task="T.", inputs={"x": ""})
    sections = insert_section(mp.sections, Section(kind="examples", title="Examples"))
    assert [s.kind for s in sections] == ["task", "inputs", "output_format", "examples"]
    sections = insert_section(sections, Section(kind="task", title="Task 2", text="Again."))
    assert [s.kind for s in sections][:2] == ["task", "task"]


def test_flow_set_rejects_bad_addresses() -> None:
    flow = h.topic_flow()
    with pytest.raises(KeyError):
        flow.set("nope.params.temperature", 0.1)
    with pytest.raises(ValueError):
        flow.set("classify.graph", 1)
    with pytest.raises(ValueError):
        flow.set("classify.sections.bogus", "x")
    with pytest.raises(TypeError):
        h.pipeline().set("tidy.params.temperature", 0.1)


def test_address_parses_and_prints_the_stable_strings() -> None:
    for text in (
        "reply.sections.task",
        "reply.sections.guidelines#1",
        "reply.params.temperature",
        "reply.sections",
        "reply.output.reasoning",
        "reply.examples",
        "graph.nodes",
        "graph.edges",
    ):
        assert str(Address.parse(text)) == text
    assert Address.parse("reply.sections.guidelines#1") == Address("reply", "sections", "guidelines", 1)
    assert Address.parse("graph.edges") == Address(None, "edges")
    assert str(Address.section("reply", "task")) == "reply.sections.task"
    assert str(Address.param("reply", "temperature")) == "reply.params.temperature"


def test_flow_get_reads_what_set_writes() -> None:
    flow = _rich()
    assert flow.get("reply.params.temperature") == 0.0
    assert flow.set("reply.params.temperature", 0.5).get(Address.param("reply", "temperature")) == 0.5
    assert flow.set("reply.sections.task", "New task.").get("reply.sections.task").text == "New task."
    assert flow.get("reply.sections.guidelines#5") is None
    assert flow.get("reply.sections") == address_values(flow)["reply.sections"]
    assert flow.get("graph.nodes") == address_values(flow)["graph.nodes"]
    with pytest.raises(KeyError):
        flow.get("nope.params.temperature")
