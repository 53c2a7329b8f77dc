"""Evaluating a flow over rows: concurrency, failures, traces, usage, scores and the call cache."""

from __future__ import annotations

import threading

import pytest

from microprompts import CallCache, Flow, ModelCaller, evaluate
from microprompts.data import Row
from microprompts.evals import MetricError, Score
from microprompts.testing import ScriptedChatModel
from tests.flows.helpers import ANSWER, respond, triage_flow, triage_model

ROWS = [
    {"inputs": {"text": "fire in room 1"}, "output": {"reply": "ESCALATED: fire in room 1"}, "id": "r1"},
    {"inputs": {"text": "login help"}, "output": {"reply": "re: login help"}, "id": "r2"},
    {"inputs": {"text": "refund please"}, "output": {"reply": "nope"}, "id": "r3"},
]


def reply_match(example, prediction):
    expected = example["output"] if isinstance(example, dict) else example.output
    ok = prediction.get("reply") == expected["reply"]
    return Score(value=float(ok), feedback="" if ok else f"expected {expected['reply']!r}")


def test_evaluate_scores_every_row_and_averages():
    result = evaluate(triage_flow(), ROWS, reply_match, model=triage_model(), caller=ModelCaller(cache=None))
    assert (result.n, result.errors) == (3, 0)
    assert [r.score for r in result.rows] == [1.0, 1.0, 0.0]
    assert result.score == pytest.approx(2 / 3)
    assert [r.id for r in result.rows] == ["r1", "r2", "r3"]
    assert result.rows[1].prediction == {"label": "normal", "reply": "re: login help"}
    assert result.rows[2].feedback == "expected 'nope'"
    assert [r.index for r in result.failures()] == [2]


def test_evaluate_accepts_dataset_rows():
    rows = [Row(inputs=r["inputs"], output=r["output"], id=r["id"]) for r in ROWS]
    result = evaluate(
        triage_flow(),
        rows,
        lambda ex, pred: pred["reply"] == ex.output["reply"],
        model=triage_model(),
        caller=ModelCaller(cache=None),
    )
    assert [r.score for r in result.rows] == [1.0, 1.0, 0.0]


def test_evaluate_records_a_trace_per_node_that_ran():
    result = evaluate(triage_flow(), ROWS, model=triage_model(), caller=ModelCaller(cache=None))
    urgent, normal = result.rows[0], result.rows[1]
    assert [t.node for t in urgent.traces] == ["classify", "escalate"]
    assert [t.node for t in normal.traces] == ["classify", "answer"]
    assert urgent.traces[1].kind == "function" and urgent.traces[1].output == {"reply": "ESCALATED: fire in room 1"}
    assert normal.traces[0].output == {"label": "normal"} and normal.traces[0].replies == ['{"label": "normal"}']


def test_usage_totals_add_up_over_nodes_and_rows():
    model = triage_model(usage={"input_tokens": 10, "output_tokens": 2})
    result = evaluate(triage_flow(), ROWS, model=model, caller=ModelCaller(cache=None))
    assert [r.usage.calls for r in result.rows] == [1, 2, 2]
    assert (result.usage.calls, result.usage.prompt_tokens, result.usage.completion_tokens) == (5, 50, 10)
    assert result.usage.calls == model.call_count
    summary = result.summary()
    assert {k: summary[k] for k in ("n", "errors", "calls", "prompt_tokens", "completion_tokens")} == {
        "n": 3,
        "errors": 0,
        "calls": 5,
        "prompt_tokens": 50,
        "completion_tokens": 10,
    }
    assert {"score", "seconds", "cached_calls"} <= set(summary)


def test_a_failing_row_is_recorded_with_its_reason_and_the_others_still_run():
    def flaky(messages):
        user = str(messages[1].content)
        return "no json here" if "refund" in user else respond(messages)

    result = evaluate(
        triage_flow(), ROWS, reply_match, model=ScriptedChatModel(replies=flaky), caller=ModelCaller(cache=None)
    )
    assert result.errors == 1
    bad = result.rows[2]
    assert bad.error.startswith("OutputParseError: node 'classify'") and "no json here" in bad.error
    assert bad.score == 0.0 and bad.prediction is None and bad.feedback.startswith("failed: OutputParseError")
    assert bad.traces[0].error and bad.traces[0].replies == ["no json here", "no json here"]
    assert [r.error for r in result.rows[:2]] == [None, None] and result.score == pytest.approx(2 / 3)


def test_a_row_missing_an_input_is_recorded_not_raised():
    result = evaluate(triage_flow(), [{"inputs": {"txt": "x"}}], model=triage_model(), caller=ModelCaller(cache=None))
    assert result.errors == 1 and "row has no input(s) ['text']" in result.rows[0].error


def test_a_model_error_fails_the_row_with_model_call_error():
    model = ScriptedChatModel(replies=[ValueError("bad request")])
    result = evaluate(
        Flow("one").then(ANSWER),
        [{"inputs": {"text": "x"}}],
        model=model,
        caller=ModelCaller(cache=None, base_delay=0.0),
    )
    assert result.rows[0].error.startswith(
        "ModelCallError: model call failed after 1 attempt, not retryable (ValueError: bad request"
    )
    assert result.usage.failures == 1 and result.usage.calls == 0


def test_a_metric_that_returns_garbage_raises_metric_error():
    with pytest.raises(MetricError):
        evaluate(
            triage_flow(), ROWS[:1], lambda ex, pred: "great", model=triage_model(), caller=ModelCaller(cache=None)
        )


def test_rows_run_concurrently():
    barrier = threading.Barrier(4, timeout=10)

    def together(messages):
        barrier.wait()  # only returns once 4 calls are in flight at the same time
        return '{"reply": "ok"}'

    rows = [{"inputs": {"text": f"t{i}"}} for i in range(8)]
    result = evaluate(
        Flow("one").then(ANSWER),
        rows,
        model=ScriptedChatModel(replies=together),
        caller=ModelCaller(cache=None),
        concurrency=4,
    )
    assert result.errors == 0 and all(r.prediction == {"reply": "ok"} for r in result.rows)


def test_results_keep_row_order_under_concurrency():
    rows = [{"inputs": {"text": f"t{i}"}} for i in range(20)]
    result = evaluate(
        Flow("one").then(ANSWER), rows, model=triage_model(), caller=ModelCaller(cache=None), concurrency=8
    )
    assert [r.prediction["reply"] for r in result.rows] == [f"re: t{i}" for i in range(20)]


def test_a_second_evaluate_with_the_same_cache_makes_no_calls(tmp_path):
    cache = CallCache(tmp_path / "c.sqlite")
    model = triage_model()
    first = evaluate(triage_flow(), ROWS, reply_match, model=model, caller=ModelCaller(cache=cache))
    assert first.usage.calls == 5 and first.usage.cached_calls == 0
    second = evaluate(triage_flow(), ROWS, reply_match, model=model, caller=ModelCaller(cache=cache))
    assert second.usage.calls == 0 and second.usage.cached_calls == 5
    assert model.call_count == 5
    assert [r.prediction for r in second.rows] == [r.prediction for r in first.rows]
    assert second.score == first.score
    reopened = evaluate(triage_flow(), ROWS, model=model, caller=ModelCaller(cache=CallCache(tmp_path / "c.sqlite")))
    assert reopened.usage.calls == 0 and model.call_count == 5


def test_evaluate_uses_the_default_cache_from_the_environment(tmp_cache):
    model = triage_model()
    evaluate(triage_flow(), ROWS, model=model)
    evaluate(triage_flow(), ROWS, model=model)
    assert model.call_count == 5 and tmp_cache.exists()


def test_empty_rows_give_an_empty_result():
    result = evaluate(triage_flow(), [], model=triage_model(), caller=ModelCaller(cache=None))
    assert (result.n, result.score, result.errors) == (0, 0.0, 0)


def test_ctrl_c_drops_the_queued_rows_at_once() -> None:
    """The first KeyboardInterrupt stops scheduling: rows still queued never run (the pool is not drained)."""
    import threading
    import time

    from microprompts import Flow, FunctionNode, evaluate

    started: list[int] = []
    lock = threading.Lock()

    def step(state: dict) -> dict:
        with lock:
            started.append(1)
            if len(started) == 2:
                raise KeyboardInterrupt
        time.sleep(0.01)  # a model call
        return {"answer": state["question"]}

    flow = Flow("interrupted").then(FunctionNode("step", step, reads=["question"], writes=["answer"]))
    rows = [{"inputs": {"question": str(i)}, "output": {"answer": str(i)}} for i in range(200)]
    with pytest.raises(KeyboardInterrupt):
        evaluate(flow, rows, concurrency=1)
    assert len(started) < 50  # of 200: the queue was dropped, not drained
