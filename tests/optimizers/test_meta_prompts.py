"""The optimizer's own prompts run as micro-prompts: typed replies sent as a schema, validated (one repair turn, then
rejected), cut-off replies refused, and every call cached and charged to the optimizer budget like a node's."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from microprompts.models import CallCache
from microprompts.optimizers.budget import Budget, BudgetedCaller, BudgetTracker
from microprompts.optimizers.candidate import Candidate
from microprompts.optimizers.mutators._meta import critique_output
from microprompts.optimizers.mutators.content import Paraphrase
from microprompts.testing import ScriptedChatModel
from tests.optimizers.mutator_helpers import SpyCaller, make_ctx, pipeline


def test_a_rewrite_is_a_typed_micro_prompt_call_and_an_invalid_reply_gets_one_repair_then_is_rejected() -> None:
    flow = pipeline()
    good = ScriptedChatModel(replies=[{"instruction": "Pick the section the topic word belongs to."}])
    caller = SpyCaller()
    ctx = make_ctx(good, caller=caller, frozen=["extract", "reply", "classify.guidelines"])
    [(child, mutation)] = Paraphrase().propose(Candidate(flow), ctx, 1)
    assert mutation.after == "Pick the section the topic word belongs to."
    [(messages, request)] = caller.requests
    assert request["node"] == "rewrite" and request["schema"]["title"] == "Instruction"
    assert "## Output format" in str(messages[0].content) and "instruction" in str(messages[0].content)
    assert str(messages[1].content).startswith("request: Step `classify`")
    bad = ScriptedChatModel(replies=[{"instruction": ["not", "a", "string"]}, {"text": "still wrong"}])
    caller = SpyCaller()
    ctx = make_ctx(bad, caller=caller, frozen=["extract", "reply", "classify.guidelines"])
    assert Paraphrase().propose(Candidate(flow), ctx, 1) == []
    assert len(caller.requests) == 2 and "invalid" in str(caller.requests[1][0][-1].content)  # the repair turn


def test_optimizer_micro_prompts_are_cached_and_charged_once_per_run() -> None:
    flow = pipeline()
    model = ScriptedChatModel(replies=[{"instruction": "Pick the section the topic word belongs to."}])
    tracker = BudgetTracker(Budget(optimizer_calls=5))
    caller = BudgetedCaller(CallCache(None), tracker, "optimizer")
    for _ in range(2):  # the same seed draws the same request: the second is a repeat, free and from the cache
        ctx = make_ctx(model, caller=caller, frozen=["extract", "reply", "classify.guidelines"])
        ctx.rng = random.Random(0)
        assert Paraphrase().propose(Candidate(flow), ctx, 1)
    assert len(model.calls) == 1 and tracker.total.optimizer_calls == 1


def test_the_critique_type_constrains_the_blamed_step_to_the_options() -> None:
    output = critique_output(["classify", "reply"])
    assert output.model_json_schema()["properties"]["node"]["enum"] == ["classify", "reply"]
    assert output.model_validate({"critique": "c", "node": "reply"})
    with pytest.raises(ValidationError):
        output.model_validate({"critique": "c", "node": "extract"})
