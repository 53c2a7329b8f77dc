"""Calibrated labels: fitting per-label biases, a calibrated node choosing by log-probability plus bias (cached and
charged like any call), and the `calibrate` operator fixing a model that always answers the majority label."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import pytest
from langchain_core.messages import BaseMessage
from pydantic import BaseModel, ValidationError

from microprompts import CallCache, ModelCaller, evaluate
from microprompts.data import Row
from microprompts.evals import exact_match
from microprompts.flows import Flow
from microprompts.flows.address import check_mutation
from microprompts.models import ModelCallError
from microprompts.nodes import Calibration, MicroPrompt
from microprompts.optimizers import Budget, optimize
from microprompts.optimizers.mutators.calibrate import CalibrateLabels, fit_biases, label_set
from microprompts.testing import ScriptedChatModel


class Answer(BaseModel):
    answer: Literal["yes", "no"]


NODE = MicroPrompt("judge", task="Say whether the word starts with p.", inputs={"word": "A word."}, output=Answer)


def gold(word: str) -> str:
    return "yes" if word.startswith("p") else "no"


class BiasedScorer(ScriptedChatModel):
    """Generates "yes" whatever it is asked; its log-probabilities hold the signal, under a bias towards "yes":
    unbiased it picks "yes" for every row, and a bias of +0.5..+2 on "no" makes it right on all of them."""

    scored: int = 0

    def reply_logprobs(self, messages: list[BaseMessage], replies: list[str]) -> list[float]:
        self.scored += 1
        word = str(messages[-1].content).split("word:")[-1].strip()
        no = -3.0 + (1.5 if gold(word) == "no" else 0.0)
        return [-1.0 if '"yes"' in r else no for r in replies]


def model() -> BiasedScorer:
    return BiasedScorer(replies=['{"answer": "yes"}'], repeat_last=True)


def rows(words: list[str]) -> list[Row]:
    return [Row(inputs={"word": w}, output={"answer": gold(w)}, id=w) for w in words]


TRAIN = rows(["pear", "apple", "plum", "kiwi", "peach", "lime", "fig", "date", "grape", "melon"])
DEV = rows(["pecan", "olive", "prune", "mango", "lemon", "guava"])


# --- fitting ---------------------------------------------------------------------------------------------------
def test_fitting_recovers_the_signal_under_a_bias() -> None:
    scores = [[-1.0, -3.0 + (1.5 if y == 1 else 0.0)] for y in [0, 1, 1, 1, 0, 1]]
    bias, accuracy = fit_biases(scores, [0, 1, 1, 1, 0, 1])
    assert accuracy == 1.0 and 0.5 < bias[1] - bias[0] < 2.0


def test_with_no_signal_the_fit_is_the_best_constant_label() -> None:
    scores = [[-1.0, -2.0], [-2.0, -1.0], [-1.0, -2.0], [-2.0, -1.0], [-1.5, -1.5]]
    gold_ = [1, 0, 1, 0, 1]  # the scores point the wrong way every time
    bias, accuracy = fit_biases(scores, gold_)
    assert accuracy == pytest.approx(0.6)
    assert all(max(range(2), key=lambda i: s[i] + bias[i]) == 1 for s in scores)


def test_an_impossible_reply_and_unknown_gold_labels_are_handled() -> None:
    bias, accuracy = fit_biases([[-math.inf, -1.0], [-1.0, -math.inf], [-1.0, -2.0]], [1, 0, -1])
    assert accuracy == pytest.approx(2 / 3) and all(math.isfinite(b) for b in bias)


def test_label_fields_come_from_the_schema_or_from_few_train_values() -> None:
    assert label_set(NODE, TRAIN) == ("answer", ["yes", "no"])

    class Free(BaseModel):
        mood: str

    free = NODE.replace(output=Free)
    mood_rows = [Row(inputs={"word": "x"}, output={"mood": m}) for m in ["up", "down", "up"]]
    assert label_set(free, mood_rows) == ("mood", ["down", "up"])
    many = [Row(inputs={"word": "x"}, output={"mood": f"m{i}"}) for i in range(20)]
    assert label_set(free, many) is None

    class Two(BaseModel):
        a: str
        b: str

    assert label_set(NODE.replace(output=Two), TRAIN) is None


# --- the parameter ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    [
        {"field": "answer", "labels": ("yes", "yes"), "bias": (0.0, 0.0)},
        {"field": "answer", "labels": ("yes", "no"), "bias": (0.0,)},
        {"field": "answer", "labels": ("yes", "no"), "bias": (0.0, math.nan)},
        {"field": "answer", "labels": ("yes",), "bias": (0.0,)},
    ],
)
def test_a_malformed_calibration_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Calibration(**bad)


def calibrated(bias: float) -> Flow:
    return Flow("judge").then(
        NODE.with_params(calibration=Calibration(field="answer", labels=("yes", "no"), bias=(0.0, bias)))
    )


def test_a_calibrated_node_chooses_by_score_plus_bias_and_is_cached(tmp_path: Path) -> None:
    scorer = model()
    flow = calibrated(1.0)
    cache = CallCache(tmp_path / "calls.sqlite")
    first = evaluate(flow, DEV, exact_match("answer"), model=scorer, caller=ModelCaller(cache=cache))
    assert first.score == 1.0 and first.usage.calls == len(DEV) and scorer.calls == []  # nothing generated
    again = evaluate(flow, DEV, exact_match("answer"), model=scorer, caller=ModelCaller(cache=cache))
    assert again.score == 1.0 and again.usage.calls == 0 and again.usage.cached_calls == len(DEV)
    assert scorer.scored == len(DEV)
    unbiased = evaluate(calibrated(0.0), DEV, exact_match("answer"), model=scorer)
    assert unbiased.score == pytest.approx(2 / 6)  # "yes" every time: the bias is what fixes it


def test_the_calibration_round_trips_through_the_artifact_and_is_absent_when_unset() -> None:
    flow = calibrated(1.25)
    back = Flow.from_dict(flow.to_dict())
    assert back.nodes["judge"].params.calibration == flow.nodes["judge"].params.calibration
    assert back.content_hash() == flow.content_hash()
    plain = Flow("judge").then(NODE).to_dict()
    assert "calibration" not in str(plain)


def test_a_model_without_log_probabilities_fails_the_row_with_the_reason() -> None:
    plain = ScriptedChatModel(replies=['{"answer": "yes"}'], repeat_last=True)
    result = evaluate(calibrated(1.0), DEV[:2], exact_match("answer"), model=plain)
    assert result.errors == 2 and "gives no log-probabilities" in str(result.rows[0].error)


def test_a_malformed_score_reply_is_a_model_call_error() -> None:
    class Broken(ScriptedChatModel):
        def reply_logprobs(self, messages: list[BaseMessage], replies: list[str]) -> list[float]:
            return [0.5]  # one score for two replies, and a probability above 1

    with pytest.raises(ModelCallError, match="finite log-probabilities"):
        ModelCaller().score_replies(Broken(), NODE.render({"word": "x"}), ['{"answer": "yes"}', '{"answer": "no"}'])


# --- the operator ----------------------------------------------------------------------------------------------
def search(scorer: BiasedScorer, run_dir: Path, resume: bool = False) -> Any:
    """The seed flow optimized with the calibrate operator alone, on `scorer`, in `run_dir`."""
    return optimize(
        Flow("judge").then(NODE),
        train=TRAIN,
        dev=DEV,
        metric=exact_match("answer"),
        model=scorer,
        mutators=[CalibrateLabels()],
        optimizer_model="none",
        holdout=0,
        budget=Budget(calls=60),
        run_dir=run_dir,
        resume=resume,
        progress=False,
    )


def test_the_calibrate_operator_fixes_a_model_that_always_says_yes(tmp_path: Path) -> None:
    scorer = model()
    result = search(scorer, tmp_path / "run")
    assert result.baseline_score == pytest.approx(2 / 6) and result.best_score == 1.0
    calibration = result.best.nodes["judge"].params.calibration
    assert calibration is not None and calibration.labels == ("yes", "no")
    assert [e.get("operator") for e in result.lineage[1:]] == ["calibrate"]
    seed = Flow("judge").then(NODE)
    assert check_mutation(seed, result.best, CalibrateLabels().addresses(seed)) == {"judge.params.calibration"}
    assert "best constant label" in str(result.lineage[-1])
    paid = result.summary()["calls"]
    resumed = search(scorer, tmp_path / "run", resume=True)
    assert resumed.summary()["calls"] == 0 and resumed.best_score == 1.0 and paid <= 60


def test_a_weak_seed_with_a_label_field_tries_calibrate_first(tmp_path: Path) -> None:
    """Every operator offered, no optimizer model: a seed below the majority label (dev 2/6) first tries calibrated
    labels, which a small budget would otherwise seldom reach (its prior is below the reply and example operators)."""
    result = optimize(
        Flow("judge").then(NODE),
        train=TRAIN,
        dev=DEV,
        metric=exact_match("answer"),
        model=model(),
        optimizer_model="none",
        holdout=0,
        budget=Budget(calls=40),
        run_dir=tmp_path / "run",
        progress=False,
    )
    children = [e for e in result.history if e.get("event") == "candidate" and e.get("status") != "baseline"]
    assert children and children[0]["operator"] == "calibrate"
    assert result.best_score == 1.0 and result.best.nodes["judge"].params.calibration is not None
