"""Who the optimizer model is by default (the task model, said once on stderr), `optimizer_model="none"` for the
no-model operators only, resume refusing a changed choice, and the selection knobs `Optimizer` exposes (paired
promotion's confidence, the held-out share of dev, the finalists re-scored), validated and recorded in run.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from microprompts.evals import exact_match
from microprompts.optimizers import Budget, Optimizer, ParetoSearch, ResumeError, optimize
from microprompts.optimizers.mutators import default_mutators
from microprompts.optimizers.optimize import TASK_MODEL
from microprompts.testing import ScriptedChatModel, parse_user
from tests.optimizers import engine_helpers as h
from tests.optimizers.mutator_helpers import TOPICS, pipeline, reply_metric, rows

FIX = "Map the topic word to its section: election to politics, chip to tech, football to sports."
LINE = "optimizer model: the task model"
METRIC = exact_match("label")
MODEL_BASED = {m.name for m in default_mutators(True)} - {m.name for m in default_mutators(False)}


def task_and_reflector() -> ScriptedChatModel:
    """One model for both roles: the pipeline's steps (classify says 'sports' unless its prompt carries FIX) and the
    reflection (it proposes FIX); any other optimizer prompt gets a reply that does not validate."""

    def respond(messages: list[BaseMessage]) -> dict[str, Any]:
        system, user = str(messages[0].content), str(messages[-1].content)
        if "proposals" in system:
            return {"diagnosis": "classify calls everything sports.", "proposals": [{"section": "task", "text": FIX}]}
        inputs = parse_user(user)
        if "- topic (" in system:
            return {"topic": str(inputs.get("text", "x")).split()[0]}
        if "- label (" in system:
            known = "election to politics" in system
            return {"label": TOPICS.get(str(inputs.get("topic")), "sports") if known else "sports"}
        return {"reply": f"Section: {inputs.get('label')}"}

    return ScriptedChatModel(replies=respond)


def _run_json(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "run.json").read_text(encoding="utf-8"))


def _pipeline_run(run_dir: Path, model: ScriptedChatModel, **settings: Any) -> Any:
    data = rows(("label", "reply"))
    return optimize(
        pipeline(),
        train=data,
        dev=data,
        metric=reply_metric,
        model=model,
        kinds=["content"],
        search=ParetoSearch(iterations=3),
        budget=Budget(calls=60),
        minibatch=3,
        progress=False,
        run_dir=run_dir,
        **settings,
    )


def test_unset_the_task_model_is_the_optimizer_model_and_that_is_said_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = task_and_reflector()
    result = _pipeline_run(tmp_path, model)
    err = capsys.readouterr().err
    assert err.count(LINE) == 1 and "optimizer_model='none'" in err
    recorded = _run_json(tmp_path)
    assert recorded["optimizer_model"] == TASK_MODEL
    assert "reflect" in recorded["mutators"] and MODEL_BASED & set(recorded["mutators"])
    asked = [c for c in model.calls if "proposals" in str(c.messages[0].content)]
    assert asked and result.usage["optimizer_calls"] >= len(asked)  # the reflection went to the task model
    assert result.baseline_score < 1.0 and result.best_score == 1.0  # and what it wrote fixed the flow


@pytest.mark.parametrize("none", ["none", "None", " NONE "])
def test_none_leaves_the_model_based_operators_out_and_says_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], none: str
) -> None:
    model = task_and_reflector()
    result = _pipeline_run(tmp_path, model, optimizer_model=none)
    assert LINE not in capsys.readouterr().err
    recorded = _run_json(tmp_path)
    assert recorded["optimizer_model"] is None  # as runs before the default recorded it
    assert not MODEL_BASED & set(recorded["mutators"])
    assert result.usage["optimizer_calls"] == 0
    assert not [c for c in model.calls if "proposals" in str(c.messages[0].content)]


def test_given_mutators_are_kept_and_ask_the_task_model(capsys: pytest.CaptureFixture[str]) -> None:
    from microprompts.optimizers.mutators.reflect import Reflect

    model = task_and_reflector()
    data = rows(("label", "reply"))
    result = optimize(
        pipeline(),
        train=data,
        dev=data,
        metric=reply_metric,
        model=model,
        mutators=[Reflect()],
        search=ParetoSearch(iterations=2),
        budget=Budget(calls=40),
        minibatch=3,
        progress=False,
    )
    assert capsys.readouterr().err.count(LINE) == 1
    assert {e["operator"] for e in result.history if e["event"] == "candidate"} <= {None, "reflect"}
    assert result.usage["optimizer_calls"] >= 1 and result.best_score == 1.0


def test_resume_refuses_a_changed_optimizer_model_choice(tmp_path: Path) -> None:
    data = {"train": h.rows(0, 8), "dev": h.rows(100, 8), "metric": METRIC, "run_dir": tmp_path}
    settings: dict[str, Any] = {"model": h.model(), "budget": Budget(calls=30), "minibatch": 4, "progress": False}
    optimize(h.topic_flow(), **data, **settings)
    with pytest.raises(ResumeError, match="optimizer_model"):
        optimize(h.topic_flow(), **data, **settings, optimizer_model="none", resume=True)
    optimize(h.topic_flow(), **data, **settings, resume=True)  # the same choice resumes


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("confidence", -0.1),
        ("confidence", float("nan")),
        ("confidence", float("inf")),
        ("confidence", "high"),
        ("holdout", -0.01),
        ("holdout", 0.6),
        ("holdout", True),
        ("finalists", 0),
        ("finalists", 2.5),
        ("finalists", True),
    ],
)
def test_selection_knobs_out_of_range_are_a_clear_value_error(setting: str, value: Any) -> None:
    with pytest.raises(ValueError, match=setting):
        Optimizer(**{setting: value})
    with pytest.raises(ValueError, match=setting):  # before any work: no model is ever asked
        optimize(h.topic_flow(), dev=h.rows(100, 4), metric=METRIC, optimizer_model="none", **{setting: value})


def _knob_run(run_dir: Path, **knobs: Any) -> Any:
    return optimize(
        h.topic_flow(),
        train=h.rows(0, 8),
        dev=h.rows(100, 20),
        metric=METRIC,
        model=h.model(),
        optimizer_model="none",
        mutators=h.search_mutators(),
        budget=Budget(calls=160),
        minibatch=4,
        progress=False,
        run_dir=run_dir,
        **knobs,
    )


def _final(result: Any) -> dict[str, Any] | None:
    return next((e for e in result.history if e["event"] == "final"), None)


def test_selection_knobs_reach_the_engine_and_run_json(tmp_path: Path) -> None:
    default = _knob_run(tmp_path / "default")
    final = _final(default)
    assert final is not None and final["holdout_n"] == 5  # a quarter of 20 dev rows
    recorded = _run_json(tmp_path / "default")
    assert (recorded["confidence"], recorded["holdout"], recorded["finalists"]) == (0.8, 0.25, 3)

    no_holdout = _knob_run(tmp_path / "off", holdout=0)
    assert _final(no_holdout) is None  # nothing held out: the best on dev wins, no re-score
    assert _run_json(tmp_path / "off")["holdout"] == 0.0

    one = _knob_run(tmp_path / "one", finalists=1, holdout=0.3)
    final = _final(one)
    assert final is not None and final["holdout_n"] == 6 and len(final["finalists"]) <= 2  # the best and the seed

    strict = _knob_run(tmp_path / "strict", confidence=1e9)
    assert strict.best_candidate.id == strict.baseline.id  # no child clears a huge margin
    assert default.best_score > default.baseline_score  # where the default promotes one
    with pytest.raises(ResumeError, match="confidence"):
        _knob_run(tmp_path / "default", confidence=2.0, resume=True)
