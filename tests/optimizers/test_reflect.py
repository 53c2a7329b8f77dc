"""Reflective proposal (GEPA's manner) on the 3-node pipeline, the optimizer's typed micro-prompt, and the per-row
Pareto pool that keeps a candidate best on some dev row eligible as a parent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage

from microprompts.evals import EvalResult, evaluate
from microprompts.models import ModelCaller
from microprompts.nodes import MicroPrompt
from microprompts.optimizers import Budget, optimize
from microprompts.optimizers.candidate import Candidate
from microprompts.optimizers.mutators import default_mutators
from microprompts.optimizers.mutators.reflect import Reflect
from microprompts.optimizers.search import ParetoSearch, make_search
from microprompts.optimizers.selection import row_pareto
from microprompts.testing import ScriptedChatModel, parse_user
from tests.optimizers.mutator_helpers import TOPICS, SpyCaller, make_ctx, pipeline, reply_metric, rows

FIX = "Map the topic word to its section: election to politics, chip to tech, football to sports."


def task_model() -> ScriptedChatModel:
    """The pipeline's task model with a known defect: classify says 'sports' for every topic unless its prompt
    carries the mapping rule (FIX); extract and reply do their jobs."""

    def respond(messages: list[BaseMessage]) -> dict[str, Any]:
        system, inputs = str(messages[0].content), parse_user(str(messages[1].content))
        if "- topic (" in system:
            return {"topic": str(inputs["text"]).split()[0]}
        if "- label (" in system:
            known = "election to politics" in system
            return {"label": TOPICS.get(str(inputs.get("topic")), "sports") if known else "sports"}
        return {"reply": f"Section: {inputs['label']}"}

    return ScriptedChatModel(replies=respond)


def scored(flow: Any, data: list[dict[str, Any]]) -> EvalResult:
    return evaluate(flow, data, reply_metric, model=task_model(), caller=ModelCaller(cache=None), concurrency=1)


def reflector(proposals: list[dict[str, str]]) -> ScriptedChatModel:
    """An optimizer model that answers the reflection with `proposals` (and records what it was shown)."""
    return ScriptedChatModel(
        replies=lambda _: {"diagnosis": "classify calls everything sports.", "proposals": proposals}
    )


def test_reflective_proposal_fixes_the_known_defect_in_the_blamed_node_of_a_3_node_flow() -> None:
    flow, data = pipeline(), rows(("label", "reply"))
    before = scored(flow, data)
    assert before.score < 1.0
    optimizer = reflector(
        [
            {"section": "task", "text": f"Classify the topic into a newspaper section. {FIX}"},
            {"section": "guidelines", "text": f"- {FIX}"},
            {"section": "task", "text": "Say sports."},  # drops nothing it must keep? it drops 'topic': rejected
        ]
    )
    caller = SpyCaller()
    ctx = make_ctx(optimizer, evaluation=before, train=data, caller=caller)
    reflect = Reflect(proposals=3)
    [(child, mutation)] = reflect.propose(Candidate(flow), ctx, 1)
    assert mutation.operator == "reflect" and mutation.address == "classify.sections.task"  # the blamed node
    assert "reflected on classify" in mutation.note
    assert scored(child, data).score == 1.0  # the defect is fixed
    [(messages, request)] = caller.requests  # one typed call, constrained to the reflection's schema
    schema = json.dumps(request["schema"])
    assert "proposals" in schema and "diagnosis" in schema and request["node"] == "reflect"
    shown = str(messages[-1].content)
    assert "election news today" in shown and "Section: sports" in shown  # the row's input, the downstream output
    assert "step classify read" in shown and '"label": "politics"' in shown  # its own input, the expected output
    [(second, other)] = reflect.propose(Candidate(flow), ctx, 1)  # the next proposal, from the same call
    assert other.address == "classify.sections.guidelines" and len(caller.requests) == 1
    assert scored(second, data).score == 1.0
    [(third, _)] = reflect.propose(Candidate(flow), ctx, 1)  # "Say sports." dropped 'topic': a new call instead
    assert len(caller.requests) == 2 and "Say sports." not in third.to_dict().__repr__()


def test_a_reflection_reply_that_does_not_validate_is_rejected_never_adopted() -> None:
    flow, data = pipeline(), rows(("label", "reply"))
    evaluation = scored(flow, data)
    for reply in (
        {"diagnosis": "x", "proposals": "use the mapping"},  # wrong type
        {"diagnosis": "x", "proposals": []},  # fewer than one
        {"diagnosis": "x", "proposals": [{"section": "examples", "text": FIX}]},  # not a text section
        "not JSON at all",
    ):
        optimizer = ScriptedChatModel(replies=[reply], repeat_last=True)
        caller = SpyCaller()
        ctx = make_ctx(optimizer, evaluation=evaluation, train=data, caller=caller)
        assert Reflect().propose(Candidate(flow), ctx, 1) == []
        assert len(caller.requests) == 2  # the reply and the node's one repair turn, both through the caller


def test_the_per_row_pareto_pool_keeps_a_candidate_best_on_some_row() -> None:
    scores = {"seed": [0.0, 0.0, 1.0, 0.0], "a": [1.0, 1.0, 0.0, 0.0], "b": [1.0, 0.0, 0.0, 0.0], "c": [0, 0, 1.0, 0]}
    assert row_pareto(scores) == {"seed": 1, "a": 2}  # b is dominated by a; c only repeats the seed
    assert row_pareto({"seed": [0.0, 0.0]}) == {"seed": 1}


def test_pareto_search_fixes_the_pipeline_with_reflection_end_to_end_and_resumes_without_paying_twice(
    tmp_path: Path,
) -> None:
    data = rows(("label", "reply"))
    optimizer = reflector([{"section": "task", "text": f"Classify the topic into a newspaper section. {FIX}"}])
    assert isinstance(make_search("pareto"), ParetoSearch)
    assert "reflect" in {m.name for m in default_mutators(True)} - {m.name for m in default_mutators(False)}
    run: dict[str, Any] = dict(
        train=data,
        dev=data,
        metric=reply_metric,
        model=task_model(),
        optimizer_model=optimizer,
        mutators=[Reflect()],
        search=ParetoSearch(iterations=3),
        budget=Budget(calls=60),
        minibatch=3,
        progress=False,
        run_dir=tmp_path,
    )
    result = optimize(pipeline(), **run)
    again = optimize(pipeline(), resume=True, **run)
    assert again.best_candidate.id == result.best_candidate.id and again.usage["evaluations_run"] == 0
    assert len(optimizer.calls) == result.usage["optimizer_calls"]  # the resumed run's reflection came from the cache
    assert result.baseline_score < 1.0 and result.best_score == 1.0
    classify = result.best.nodes["classify"]
    assert isinstance(classify, MicroPrompt) and FIX in (classify.section("task").text or "")  # type: ignore[union-attr]
    assert result.usage["optimizer_calls"] >= 1
