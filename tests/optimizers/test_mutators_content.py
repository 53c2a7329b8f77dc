"""Model-based content mutators: valid children that touch only what they declare, strict rejection of bad
replies, bounded requests, and blame that finds the node at fault in a multi-node flow."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from microprompts.evals import EvalResult, RowResult
from microprompts.flows import Flow
from microprompts.flows.address import check_mutation
from microprompts.models import BudgetExceeded, Completion, Usage
from microprompts.nodes import MicroPrompt, NodeTrace
from microprompts.optimizers.candidate import Candidate
from microprompts.optimizers.mutators._ask import accept_text, fit_blocks, parse_object
from microprompts.optimizers.mutators.content import (
    Compress,
    InduceInstruction,
    OproProposal,
    Paraphrase,
    PhraseBank,
    TextualGradient,
    blame,
    content_mutators,
)
from microprompts.testing import ScriptedChatModel
from tests.optimizers.mutator_helpers import SpyCaller, make_ctx, pipeline, rows, run

LONG_TASK = (
    "Classify the topic into a newspaper section, using the house rules. Read the topic word with care, "
    "and think about which section of the paper a reader would look in for it."
)


def _critique_or(reply: dict[str, Any]) -> Any:
    """An optimizer that critiques (blaming classify) and otherwise replies `reply`."""

    def respond(messages: list[BaseMessage]) -> Any:
        if "most responsible" in str(messages[-1].content):
            return {
                "critique": "classify maps every topic to sports; it must map election to politics.",
                "node": "classify",
            }
        return reply

    return respond


def counting_optimizer() -> ScriptedChatModel:
    """Answers every instruction request with a new short text; critiques blame classify."""
    counter = itertools.count(1)

    def respond(messages: list[BaseMessage]) -> Any:
        if "most responsible" in str(messages[-1].content):
            return _critique_or({})(messages)
        return {"instruction": f"Map topic to label: sports, politics or tech (v{next(counter)})."}

    return ScriptedChatModel(replies=respond)


def long_pipeline() -> Flow:
    flow = pipeline()
    classify = flow.nodes["classify"]
    assert isinstance(classify, MicroPrompt)
    sections = [s.model_copy(update={"text": LONG_TASK}) if s.kind == "task" else s for s in classify.sections]
    return flow.replace_node(classify.replace(sections=sections))


OPERATORS = [Paraphrase, Compress, InduceInstruction, OproProposal, TextualGradient, PhraseBank]


@pytest.mark.parametrize("operator", OPERATORS, ids=lambda c: c.name)
def test_each_operator_yields_valid_children_that_touch_only_what_it_declares(operator: type) -> None:
    flow = long_pipeline()
    evaluation = run(flow, rows(), "wrong")
    history = [("classify.sections.task", "Pick a section.", 0.2)]
    ctx = make_ctx(counting_optimizer(), evaluation=evaluation, history=history)
    mutator = operator()
    children = mutator.propose(Candidate(flow), ctx, n=3)
    assert children, f"{mutator.name} proposed nothing"
    for child, mutation in children:
        child.validate()
        child.compile()
        assert mutation.operator == mutator.name and mutation.kind == "content"
        changed = check_mutation(flow, child, mutator.addresses(flow), ctx.frozen)
        assert changed == {mutation.address}
        assert mutation.before != mutation.after
        assert run(child, rows(), "right").score == 1.0  # the child still runs end to end


def test_compress_children_are_shorter_and_too_long_replies_are_rejected() -> None:
    flow = long_pipeline()
    only_task = ["classify.guidelines", "extract", "reply"]
    short = ScriptedChatModel(replies=[{"instruction": "Map the topic to its section."}])
    children = Compress().propose(Candidate(flow), make_ctx(short, frozen=only_task), n=1)
    assert len(children) == 1 and len(children[0][1].after) < len(LONG_TASK)
    longer = ScriptedChatModel(replies=[{"instruction": LONG_TASK + " Also be careful."}])
    assert Compress().propose(Candidate(flow), make_ctx(longer, frozen=only_task), n=1) == []


def test_rewrites_that_drop_a_label_or_field_name_the_text_mentions_are_rejected() -> None:
    flow = pipeline()
    only_guidelines = ["classify.task", "extract", "reply"]
    echo = ScriptedChatModel(replies=[{"instruction": "Rewrite this guideline in different words."}])
    assert Paraphrase().propose(Candidate(flow), make_ctx(echo, frozen=only_guidelines), n=1) == []
    dropped = ScriptedChatModel(replies=[{"instruction": "Sports is about games; elections go to the news."}])
    assert Paraphrase().propose(Candidate(flow), make_ctx(dropped, frozen=only_guidelines), n=1) == []
    kept = ScriptedChatModel(replies=[{"instruction": "SPORTS: games, athletes. Politics: elections."}])
    ((_, mutation),) = Paraphrase().propose(Candidate(flow), make_ctx(kept, frozen=only_guidelines), n=1)
    assert mutation.after == "SPORTS: games, athletes. Politics: elections."


BAD_REPLIES = {
    "unparsable": "Sure! Here is a better instruction: classify carefully.",
    "empty": {"instruction": "   "},
    "wrong type": {"instruction": 42},
    "missing key": {"text": "Classify carefully."},
    "oversized": {"instruction": "Classify carefully. " * 200},
    "identical": {"instruction": "  classify the topic into a newspaper section,   using the house rules. "},
    "a JSON list": "[1, 2]",
}


@pytest.mark.parametrize("reply", list(BAD_REPLIES.values()), ids=list(BAD_REPLIES))
@pytest.mark.parametrize("operator", [Paraphrase, TextualGradient], ids=lambda c: c.name)
def test_bad_replies_are_rejected_never_adopted(operator: type, reply: Any) -> None:
    flow = pipeline()
    ctx = make_ctx(
        ScriptedChatModel(replies=_critique_or(reply)),
        evaluation=run(flow, rows(), "wrong"),
        frozen=["extract", "reply", "classify.guidelines"],
    )
    assert operator().propose(Candidate(flow), ctx, n=2) == []
    assert ctx.caller is not None and isinstance(ctx.caller, SpyCaller) and ctx.caller.requests  # it did ask


@pytest.mark.parametrize("operator", [Paraphrase, TextualGradient], ids=lambda c: c.name)
def test_truncated_replies_are_rejected_even_when_they_parse(operator: type) -> None:
    flow = pipeline()
    model = ScriptedChatModel(replies=_critique_or({"instruction": "Classify the topic word."}), finish_reason="length")
    ctx = make_ctx(model, evaluation=run(flow, rows(), "wrong"))
    assert operator().propose(Candidate(flow), ctx, n=2) == []
    assert parse_object(Completion(text='{"instruction": "x"}', finish_reason="length")) is None
    assert parse_object(Completion(text='{"instruction": "x"}', finish_reason="stop")) == {"instruction": "x"}


def test_accept_text_rejects_repeats_of_texts_already_tried() -> None:
    assert accept_text({"instruction": "Do A."}, max_chars=50, seen=["do  a."]) is None
    assert accept_text({"instruction": "Do B."}, max_chars=50, seen=["do a."]) == "Do B."


def test_failed_optimizer_calls_are_rejections_but_budget_exhaustion_stops_the_search() -> None:
    flow = pipeline()
    broken = ScriptedChatModel(replies=[ValueError("server said no")])
    assert Paraphrase().propose(Candidate(flow), make_ctx(broken), n=1) == []

    def spent() -> None:
        raise BudgetExceeded("optimizer budget spent")

    ctx = make_ctx(counting_optimizer(), caller=SpyCaller(before_call=spent))
    with pytest.raises(BudgetExceeded):
        Paraphrase().propose(Candidate(flow), ctx, n=1)


def test_without_an_optimizer_model_only_the_phrase_bank_proposes() -> None:
    flow = pipeline()
    ctx = make_ctx(None, evaluation=run(flow, rows(), "wrong"))
    for mutator in content_mutators():
        children = mutator.propose(Candidate(flow), ctx, n=2)
        assert bool(children) == (mutator.name == "phrase_bank"), mutator.name


def test_requests_stay_within_max_prompt_chars_with_huge_rows_and_many_failures() -> None:
    flow = pipeline()
    huge = [
        {"inputs": {"text": f"{w} " + "blah " * 5000}, "output": {"reply": "x" * 3000}}
        for w in ("football", "election", "chip") * 10
    ]
    evaluation = run(flow, huge, "wrong")
    assert len(evaluation.failures()) == 20
    for limit in (1500, 3000):
        ctx = make_ctx(
            counting_optimizer(),
            evaluation=evaluation,
            train=huge,
            max_prompt_chars=limit,
            history=[("classify.sections.task", "x" * 4000, 0.1)] * 3,
        )
        for mutator in content_mutators():
            mutator.propose(Candidate(flow), ctx, n=2)
        assert isinstance(ctx.caller, SpyCaller)
        assert ctx.caller.requests and max(ctx.caller.sizes()) <= limit
        critiques = [m for m, _ in ctx.caller.requests if "most responsible" in str(m[-1].content)]
        assert critiques and all(str(m[-1].content).count("\nExample ") <= 3 for m in critiques)


def test_a_request_that_cannot_fit_is_not_sent() -> None:
    ctx = make_ctx(counting_optimizer(), max_prompt_chars=100)
    assert Paraphrase().propose(Candidate(long_pipeline()), ctx, n=2) == []
    assert isinstance(ctx.caller, SpyCaller) and ctx.caller.requests == []


def test_fit_blocks_shares_the_budget_and_never_exceeds_it() -> None:
    blocks = fit_blocks(["a" * 10, "b" * 1000, "c" * 1000], 500)
    assert blocks[0] == "a" * 10 and sum(map(len, blocks)) <= 500 and len(blocks[1]) > 200


def test_frozen_sections_are_never_rewritten() -> None:
    flow = long_pipeline()
    frozen = ["classify.task", "extract.sections.*", "reply"]
    ctx = make_ctx(counting_optimizer(), evaluation=run(flow, rows(), "wrong"), frozen=frozen)
    for mutator in content_mutators():
        for child, mutation in mutator.propose(Candidate(flow), ctx, n=3):
            assert mutation.address == "classify.sections.guidelines", mutator.name
            check_mutation(flow, child, mutator.addresses(flow), frozen)


def test_induce_shows_the_nodes_own_input_output_pairs() -> None:
    flow = pipeline()
    ctx = make_ctx(counting_optimizer(), train=rows(("topic", "label", "reply")))
    children = InduceInstruction().propose(Candidate(flow), ctx, n=3)
    assert {m.address for _, m in children} == {"extract.sections.task"}  # the only node the rows show alone
    ctx = make_ctx(counting_optimizer(), evaluation=run(flow, rows(), "right"))
    children = InduceInstruction().propose(Candidate(flow), ctx, n=6)
    assert "classify.sections.task" in {m.address for _, m in children}  # pairs from right rows traces
    assert isinstance(ctx.caller, SpyCaller)
    sent = [str(m[-1].content) for m, _ in ctx.caller.requests if "Step `classify`" in str(m[-1].content)]
    assert sent and all('Input: {"topic": "election"}\nOutput: {"label": "politics"}' in s for s in sent)


def test_opro_shows_the_trajectory_worst_to_best_and_rejects_a_text_already_scored() -> None:
    flow = pipeline()
    history = [
        ("classify.sections.task", "Text B.", 0.6),
        ("classify.sections.task", "Text A.", 0.2),
        ("extract.sections.task", "Elsewhere.", 0.9),
    ]
    repeat = ScriptedChatModel(replies=[{"instruction": "text b."}])
    ctx = make_ctx(repeat, history=history, frozen=["extract", "reply", "classify.guidelines"])
    assert OproProposal().propose(Candidate(flow), ctx, n=1) == []
    assert isinstance(ctx.caller, SpyCaller)
    body = str(ctx.caller.requests[0][0][-1].content)
    assert body.index("Text A.") < body.index("Text B.") and "Elsewhere." not in body


# --- blame -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("expected", [("topic", "label", "reply"), ("reply",)], ids=["all_fields", "final_only"])
def test_blame_finds_the_middle_node_that_gives_wrong_outputs_whatever_the_model_says(expected: tuple) -> None:
    flow = pipeline()
    evaluation = run(flow, rows(expected), "wrong")
    liar = ScriptedChatModel(replies=[{"critique": "The reply step is bad.", "node": "reply"}])
    ctx = make_ctx(liar, evaluation=evaluation)
    node, critique = blame(flow, evaluation, ctx)
    assert node == "classify"
    assert "classify" in critique and "sports" in critique  # the evidence-based critique
    assert isinstance(ctx.caller, SpyCaller)
    schema = ctx.caller.requests[0][1]["schema"]
    assert schema["properties"]["node"]["enum"] == ["classify"]


def manual_evaluation(reply: str) -> EvalResult:
    """One failing row whose traces are all plausible: only the final reply is wrong, and it leaks nothing."""
    outputs = [
        ("extract", {"text": "election news"}, {"topic": "election"}),
        ("classify", {"topic": "election"}, {"label": "politics"}),
        ("reply", {"label": "politics"}, {"reply": reply}),
    ]
    traces = [NodeTrace(node=n, kind="micro_prompt", inputs=i, output=o) for n, i, o in outputs]
    row = RowResult(
        index=0,
        inputs={"text": "election news"},
        expected={"reply": "Section: politics"},
        prediction={"topic": "election", "label": "politics", "reply": reply},
        traces=traces,
    )
    return EvalResult(score=0.0, n=1, errors=0, rows=[row], usage=Usage(), seconds=0.0)


def test_blame_lets_the_model_choose_among_the_failing_fields_feeders_when_evidence_is_weak() -> None:
    flow = pipeline()
    evaluation = manual_evaluation("Headline")
    ctx = make_ctx(ScriptedChatModel(replies=_critique_or({})), evaluation=evaluation)
    node, critique = blame(flow, evaluation, ctx)
    assert (node, critique) == ("classify", "classify maps every topic to sports; it must map election to politics.")
    assert isinstance(ctx.caller, SpyCaller)
    sent = ctx.caller.requests[0]
    assert sent[1]["schema"]["properties"]["node"]["enum"] == ["extract", "classify", "reply"]
    text = str(sent[0][-1].content)
    assert 'step classify -> {"label": "politics"}' in text and "Headline" in text  # the end-to-end traces


def test_blame_falls_back_on_evidence_when_the_model_is_weak_or_absent() -> None:
    flow = pipeline()
    for reply in ("garbage", json.dumps({"critique": "", "node": "classify"}), {"critique": "x", "node": "nope"}):
        ctx = make_ctx(ScriptedChatModel(replies=[reply]), evaluation=run(flow, rows(("topic", "label")), "wrong"))
        assert blame(flow, ctx.evaluation, ctx)[0] == "classify"  # type: ignore[arg-type]
    evaluation = manual_evaluation("Headline")
    node, critique = blame(flow, evaluation, make_ctx(None, evaluation=evaluation))
    assert node == "reply"  # weak evidence and no model: the failing field's writer
    assert '"Section: politics"' in critique and "Headline" in critique


def test_blame_picks_the_node_whose_trace_has_an_error() -> None:
    flow = pipeline()
    evaluation = run(flow, rows(), "broken")
    assert evaluation.errors == 3
    node, critique = blame(flow, evaluation, make_ctx(None, evaluation=evaluation))
    assert node == "classify" and "OutputParseError" in critique


def test_blame_respects_the_allowed_nodes_and_refuses_when_nothing_failed() -> None:
    flow = pipeline()
    evaluation = run(flow, rows(("topic", "label")), "wrong")
    assert blame(flow, evaluation, make_ctx(None), nodes=["reply", "extract"])[0] in {"reply", "extract"}
    with pytest.raises(ValueError):
        blame(flow, run(flow, rows(), "right"), make_ctx(None))


def test_textual_gradient_edits_the_blamed_node_with_the_critique() -> None:
    flow = pipeline()
    ctx = make_ctx(counting_optimizer(), evaluation=run(flow, rows(), "wrong"))
    children = TextualGradient().propose(Candidate(flow), ctx, n=2)
    assert {m.address for _, m in children} == {"classify.sections.task", "classify.sections.guidelines"}
    assert all(m.note.startswith("blamed classify") for _, m in children)
    assert isinstance(ctx.caller, SpyCaller)
    edits = [str(m[-1].content) for m, _ in ctx.caller.requests[1:]]
    assert all("must map election to politics" in e for e in edits)


def test_the_registry_takes_these_operators_under_unique_names() -> None:
    from microprompts.optimizers.mutators import default_mutators

    ours = {
        "paraphrase",
        "compress",
        "induce",
        "opro",
        "textual_gradient",
        "phrase_bank",
        "insert_check",
        "remove_node",
        "split_node",
        "vote",
    }
    assert ours <= {m.name for m in default_mutators(True)}  # it raises on a duplicate name
    assert [m.name for m in content_mutators(optimizer_model_available=False)] == ["phrase_bank"]
