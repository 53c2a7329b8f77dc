"""The retry policy: Retry-After as seconds or as an HTTP date, backoff otherwise, and what is never retried."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime, formatdate

import httpx
import openai
import pytest
import tenacity
from langchain_core.messages import BaseMessage, HumanMessage

from microprompts.models import BudgetExceeded, ModelCaller, ModelCallError, UsageMeter, resolve_model
from microprompts.models.retry import MAX_WAIT, RetryPolicy, retry_after, retry_wait
from microprompts.testing import ScriptedChatModel
from tests.fakes import FaultSchedule

MESSAGES: list[BaseMessage] = [HumanMessage(content="text: x")]
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def rate_limited(retry_after_header: str | None) -> openai.RateLimitError:
    """A 429 as the OpenAI client raises it, with the given Retry-After header (None: no header)."""
    headers = {} if retry_after_header is None else {"Retry-After": retry_after_header}
    request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    return openai.RateLimitError("HTTP 429", response=httpx.Response(429, headers=headers, request=request), body=None)


def http_date(when: datetime) -> str:
    """`when` as an HTTP date (IMF-fixdate), as a server writes Retry-After."""
    return format_datetime(when, usegmt=True)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record backoff sleeps instead of sleeping."""
    slept: list[float] = []
    monkeypatch.setattr("microprompts.models.client.time.sleep", slept.append)
    return slept


# --- the wait, computed ----------------------------------------------------------------------------------------
def test_retry_after_as_an_http_date_waits_until_then() -> None:
    assert retry_after(rate_limited(http_date(NOW + timedelta(seconds=2))), now=NOW) == 2.0
    assert retry_wait(rate_limited(http_date(NOW + timedelta(seconds=1))), 0, 0.5, 8.0, now=NOW) == 1.0


def test_retry_after_as_an_http_date_in_the_past_waits_nothing_and_a_far_one_is_capped() -> None:
    assert retry_after(rate_limited(http_date(NOW - timedelta(seconds=5))), now=NOW) == 0.0
    assert retry_wait(rate_limited(http_date(NOW + timedelta(hours=1))), 0, 0.5, 8.0, now=NOW) == MAX_WAIT


def test_retry_after_as_an_http_date_in_another_form_or_zone() -> None:
    asctime = (NOW + timedelta(seconds=3)).strftime("%a %b %d %H:%M:%S %Y")  # asctime form: GMT by definition
    assert retry_after(rate_limited(asctime), now=NOW) == 3.0
    plus_one = (NOW + timedelta(seconds=4)).astimezone(timezone(timedelta(hours=1)))
    assert retry_after(rate_limited(format_datetime(plus_one)), now=NOW) == 4.0


@pytest.mark.parametrize("header, seconds", [("7", 7.0), ("0", 0.0), ("1.5", 1.5), ("3600", MAX_WAIT)])
def test_retry_after_in_seconds_still_works(header: str, seconds: float) -> None:
    assert retry_wait(rate_limited(header), 0, 0.5, 8.0) == seconds


@pytest.mark.parametrize("header", ["soon", "", "nan", "Mon, 99 Foo 2026 99:99:99 GMT", None])
def test_an_unreadable_or_missing_retry_after_falls_back_to_backoff(header: str | None) -> None:
    exc = rate_limited(header)
    assert retry_after(exc, now=NOW) is None
    waits = [retry_wait(exc, attempt, 0.5, 8.0, now=NOW) for attempt in range(6)]
    caps = [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert all(cap / 2 <= w <= cap for w, cap in zip(waits, caps, strict=True))


def test_an_error_without_a_response_gets_backoff() -> None:
    assert retry_after(TimeoutError()) is None
    assert 1.0 <= retry_wait(TimeoutError(), 1, 1.0, 4.0) <= 2.0


def test_the_tenacity_wait_reads_the_failed_attempt() -> None:
    policy = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=4.0)
    state = tenacity.RetryCallState(retry_object=policy.retrying(), fn=None, args=(), kwargs={})
    state.set_exception((TimeoutError, TimeoutError(), None))
    state.attempt_number = 3  # the third attempt failed: backoff 1 * 2**2 = 4, with jitter
    assert 2.0 <= policy.wait(state) <= 4.0
    header = formatdate(time.time() + 2, usegmt=True)
    state.set_exception((openai.RateLimitError, rate_limited(header), None))
    assert 0.0 < policy.wait(state) <= 2.0
    state.attempt_number = 4  # the last attempt: no retry follows
    assert policy.wait(state) == 0.0


# --- the wait, used by ModelCaller -----------------------------------------------------------------------------
def test_a_429_with_an_http_date_retry_after_waits_about_that_long(sleeps: list[float]) -> None:
    header = formatdate(time.time() + 2, usegmt=True)  # whole seconds: between 1 and 2 s from now
    model = ScriptedChatModel(replies=[rate_limited(header), "ok"])
    assert ModelCaller(base_delay=0.01).complete(model, MESSAGES).text == "ok"
    assert len(sleeps) == 1 and 0.5 < sleeps[0] <= 2.0


def test_a_429_with_a_garbage_retry_after_backs_off(sleeps: list[float]) -> None:
    model = ScriptedChatModel(replies=[rate_limited("whenever"), rate_limited("whenever"), "ok"])
    assert ModelCaller(base_delay=1.0, max_delay=8.0).complete(model, MESSAGES).text == "ok"
    assert len(sleeps) == 2 and 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0


# --- what the retries keep -------------------------------------------------------------------------------------
def test_a_budget_refusal_between_attempts_propagates_at_once(sleeps: list[float]) -> None:
    checks: list[int] = []

    def budget() -> None:
        checks.append(1)
        if len(checks) == 2:
            raise BudgetExceeded("spent")

    model = ScriptedChatModel(replies=[TimeoutError(), "never"])
    caller = ModelCaller(before_call=budget)
    with pytest.raises(BudgetExceeded, match="spent"):
        caller.complete(model, MESSAGES)
    assert model.call_count == 1 and len(checks) == 2 and len(sleeps) == 1
    assert caller.meter.total.failures == 1 and caller.meter.total.calls == 0


def test_any_error_of_before_call_goes_up_unwrapped_and_is_not_retried(sleeps: list[float]) -> None:
    def stop() -> None:
        raise TimeoutError("stop here")  # transient-looking, but not a failed attempt

    model = ScriptedChatModel(replies=["never"])
    with pytest.raises(TimeoutError, match="stop here"):
        ModelCaller(before_call=stop).complete(model, MESSAGES)
    assert model.call_count == 0 and sleeps == []


def test_a_budget_refusal_from_the_model_is_not_a_failed_attempt(sleeps: list[float]) -> None:
    model = ScriptedChatModel(replies=[BudgetExceeded("inner"), "never"])
    caller = ModelCaller()
    with pytest.raises(BudgetExceeded, match="inner"):
        caller.complete(model, MESSAGES)
    assert model.call_count == 1 and sleeps == [] and caller.meter.total.failures == 0


def test_each_failed_attempt_is_accounted_with_its_seconds(sleeps: list[float]) -> None:
    meter = UsageMeter()
    model = ScriptedChatModel(replies=[TimeoutError()], repeat_last=True)
    with pytest.raises(ModelCallError, match=r"^model call failed after 3 attempts \(TimeoutError: \)$") as info:
        ModelCaller(max_attempts=3).complete(model, MESSAGES, node="n", meter=meter)
    assert isinstance(info.value.__cause__, TimeoutError)
    assert meter.total.failures == 3 and meter.total.seconds >= 0.0 and meter.total.calls == 0


def test_the_message_says_when_an_error_was_not_retryable(sleeps: list[float]) -> None:
    model = ScriptedChatModel(replies=[ValueError("bad"), "never"])
    with pytest.raises(ModelCallError, match=r"^model call failed after 1 attempt, not retryable \(ValueError: bad\)$"):
        ModelCaller().complete(model, MESSAGES)


def test_no_attempts_allowed_makes_no_call(sleeps: list[float]) -> None:
    model = ScriptedChatModel(replies=["never"])
    with pytest.raises(ModelCallError, match=r"after 0 attempt \(no attempt made\)"):
        ModelCaller(max_attempts=0, before_call=lambda: None).complete(model, MESSAGES)
    assert model.call_count == 0


def test_a_malformed_200_body_is_retried(fake_openai, monkeypatch: pytest.MonkeyPatch) -> None:
    """langchain-openai hangs the 200 response on the JSON decode error: still a garbled body, still retried."""
    monkeypatch.setattr("microprompts.models.retry._sleep", lambda seconds: None)
    server = fake_openai(faults=FaultSchedule.sequence(["malformed_body"]))
    model = resolve_model(f"openai:m@{server.url}")
    done = ModelCaller(cache=None).complete(model, [HumanMessage(content="hi")])
    assert done.text and server.faults_served == {"malformed_body": 1}


def test_one_attempt_allowed_makes_one_call_and_waits_for_nothing(sleeps: list[float]) -> None:
    model = ScriptedChatModel(replies=[TimeoutError("slow"), "never"])
    caller = ModelCaller(max_attempts=1)
    with pytest.raises(ModelCallError, match=r"^model call failed after 1 attempt \(TimeoutError: slow\)$"):
        caller.complete(model, MESSAGES)
    assert model.call_count == 1 and sleeps == [] and caller.meter.total.failures == 1


def test_the_first_attempt_made_outside_tenacity_leaves_the_waits_as_they_were(sleeps: list[float]) -> None:
    model = ScriptedChatModel(replies=[TimeoutError()] * 3 + ["ok"])
    meter = UsageMeter()
    done = ModelCaller(max_attempts=4, base_delay=1.0, max_delay=8.0).complete(model, MESSAGES, node="n", meter=meter)
    assert done.text == "ok" and model.call_count == 4
    assert [cap / 2 <= s <= cap for s, cap in zip(sleeps, [1.0, 2.0, 4.0], strict=True)] == [True] * 3
    assert (meter.total.calls, meter.total.failures) == (1, 3)
    assert RetryPolicy(max_attempts=3).after_first(ValueError("not transient")) is None
