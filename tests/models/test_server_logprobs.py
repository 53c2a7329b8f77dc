"""Calibrated labels on an OpenAI-compatible server: reply scores read off a greedy completion's top log-probabilities
where the candidate replies part, sent with the labels' schema, retried, cached and charged as a completion is; a
server that gives no log-probabilities, or a reply that never reaches a label, is one clear error."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from microprompts import CallCache, ModelCaller, evaluate
from microprompts.data import Row
from microprompts.evals import exact_match
from microprompts.flows import Flow
from microprompts.models import ModelCallError, resolve_model
from microprompts.models.scoring import gives_logprobs
from microprompts.models.server_logprobs import label_schema, scores_from_logprobs
from microprompts.nodes import Calibration
from tests.fakes.openai_server import FakeOpenAIServer, FaultSchedule
from tests.optimizers.test_calibrate import NODE

JSON = ['{"answer": "yes"}', '{"answer": "no"}', '{"answer": "maybe"}']


def entry(token: str, logprob: float = -0.01, top: list[tuple[str, float]] | None = None) -> dict[str, Any]:
    """One `logprobs.content` entry in OpenAI's shape."""
    tops = [{"token": t, "logprob": lp, "bytes": None} for t, lp in (top or [(token, logprob)])]
    return {"token": token, "logprob": logprob, "bytes": None, "top_logprobs": tops}


def written(*tokens: str, at: int, top: list[tuple[str, float]]) -> list[dict[str, Any]]:
    """A generation of `tokens` whose entry `at` lists `top`."""
    return [entry(t, top=top if i == at else None) for i, t in enumerate(tokens)]


# --- reading the scores -------------------------------------------------------------------------------------------
def test_each_label_scores_the_top_tokens_that_begin_it() -> None:
    content = written('{"', "answer", '":', ' "', "yes", '"}', at=4, top=[("yes", -0.2), ("no", -1.9), ("Yes", -3.0)])
    yes, no, maybe = scores_from_logprobs(content, JSON)
    assert yes == pytest.approx(-0.2) and no == pytest.approx(-1.9)
    assert maybe == pytest.approx(-3.0)  # not listed: the lowest listed log-probability, an upper bound


def test_tokens_of_one_label_add_up_and_spacing_does_not_matter() -> None:
    # The server writes no space after the colon, and its label token carries the opening quote.
    top = [('"no', math.log(0.5)), ('"n', math.log(0.2)), ('"yes', math.log(0.25)), ('"', math.log(0.05))]
    content = written('{"', "answer", '":', '"no', '"}', at=3, top=top)
    yes, no, _ = scores_from_logprobs(content, JSON)
    assert no == pytest.approx(math.log(0.7)) and yes == pytest.approx(math.log(0.25))


def test_plain_replies_part_at_the_first_token() -> None:
    yes, no = scores_from_logprobs(written("no", at=0, top=[("no", -0.1), ("yes", -2.5)]), ["yes", "no"])
    assert (yes, no) == (pytest.approx(-2.5), pytest.approx(-0.1))


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "no log-probabilities"),
        ([], "no log-probabilities"),
        (written("Sure", ", ", "yes", at=0, top=[("Sure", -0.1)]), "did not reach a label"),
        (written('{"', "label", '":', ' "', "yes", at=4, top=[("yes", -0.1)]), "did not reach a label"),
        (written('{"', "answer", '":', at=2, top=[('":', -0.1)]), "did not reach a label"),
        ([entry('{"'), entry("answer"), entry('":'), {"token": ' "yes', "logprob": -0.1}], "no top log-probabilities"),
        ([{"logprob": -0.1}], "without a token"),
    ],
)
def test_a_reply_that_cannot_be_read_is_a_clear_error(content: Any, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        scores_from_logprobs(content, JSON)


def test_the_labels_schema_is_sent_only_for_one_field_json_replies() -> None:
    assert label_schema(JSON) == {
        "type": "object",
        "properties": {"answer": {"enum": ["yes", "no", "maybe"]}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    assert label_schema(["yes", "no"]) is None
    assert label_schema(['{"a": "x"}', '{"b": "y"}']) is None
    assert label_schema(['{"a": "x", "b": 1}']) is None


# --- through the caller, on a fake server ---------------------------------------------------------------------------
def fake_logprobs(request: dict[str, Any], content: str) -> list[dict[str, Any]]:
    """What a server writes for `{"answer": "no"}`: "no" at 0.7 and "yes" at 0.2 where the label goes."""
    return written('{"', "answer", '":', ' "', "no", '"}', at=4, top=[("no", math.log(0.7)), ("yes", math.log(0.2))])


MESSAGES = [HumanMessage(content="Is a kiwi a p-word? Reply with JSON.")]


def test_a_server_scores_replies_once_then_from_the_cache(tmp_path: Path) -> None:
    faults = FaultSchedule.sequence(["500", None])
    with FakeOpenAIServer(lambda r: '{"answer": "no"}', faults, logprobs=fake_logprobs) as srv:
        model = resolve_model(f"openai:fake@{srv.base_url}")
        assert gives_logprobs(model)
        caller = ModelCaller(cache=CallCache(tmp_path / "calls.sqlite"), base_delay=0.0)
        first = caller.score_replies(model, MESSAGES, JSON[:2], node="judge")
        assert first == [pytest.approx(math.log(0.2)), pytest.approx(math.log(0.7))]
        assert srv.calls == 2  # the 500 was retried
        sent = srv.requests[-1]
        assert sent["logprobs"] is True and sent["top_logprobs"] == 20 and sent["temperature"] == 0.0
        assert sent["response_format"]["json_schema"]["schema"]["properties"]["answer"]["enum"] == ["yes", "no"]
        again = caller.score_replies(model, MESSAGES, JSON[:2], node="judge")
        assert again == first and srv.calls == 2
    usage = caller.meter.by_node["judge"]
    assert (usage.calls, usage.failures, usage.cached_calls) == (1, 1, 1)
    assert usage.prompt_tokens > 0


def test_a_server_without_log_probabilities_is_one_clear_error_paid_once(tmp_path: Path) -> None:
    with FakeOpenAIServer(lambda r: '{"answer": "no"}') as srv:
        caller = ModelCaller(cache=CallCache(tmp_path / "calls.sqlite"), base_delay=0.0)
        model = resolve_model(f"openai:fake@{srv.base_url}")
        for _ in range(2):  # the second time from the cache: a resumed run does not pay for the same answer again
            with pytest.raises(ModelCallError, match="no log-probabilities"):
                caller.score_replies(model, MESSAGES, JSON[:2])
        assert srv.calls == 1  # a reply without them is not retried
    assert (caller.meter.total.calls, caller.meter.total.cached_calls) == (1, 1)


def test_a_calibrated_node_answers_by_score_plus_bias_on_a_server(tmp_path: Path) -> None:
    rows = [Row(inputs={"word": "kiwi"}, output={"answer": "no"}, id="kiwi")]
    for bias, expected in (([0.0, 0.0], "no"), ([2.0, 0.0], "yes")):
        node = NODE.with_params(calibration=Calibration(field="answer", labels=("yes", "no"), bias=tuple(bias)))
        with FakeOpenAIServer(lambda r: '{"answer": "no"}', logprobs=fake_logprobs) as srv:
            result = evaluate(
                Flow("judge").then(node),
                rows,
                exact_match("answer"),
                model=f"openai:fake@{srv.base_url}",
                caller=ModelCaller(cache=None, base_delay=0.0),
            )
        assert result.errors == 0, [r.error for r in result.rows]
        assert result.rows[0].prediction == {"answer": expected}
