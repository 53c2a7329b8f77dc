"""The retry policy for model calls: which failures are worth another attempt, and how long to wait before it."""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import tenacity

from microprompts.models.errors import BudgetExceeded
from microprompts.models.phases import phase

_TRANSIENT_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
MAX_WAIT = 30.0  # seconds: no wait between attempts is longer, whatever a server asks for


def is_transient(exc: BaseException) -> bool:
    """Rate limits, server errors, timeouts, dropped connections and garbled bodies are worth retrying."""
    status = getattr(exc, "status_code", None)
    response = getattr(exc, "response", None)
    if status is None and response is not None:
        status = getattr(response, "status_code", None)
    if isinstance(status, int):
        # A 2xx that still failed had a body that did not parse (langchain-openai hangs the 200 response on the
        # decode error): garbled in transit or by a flaky server, so worth another attempt.
        return status in _TRANSIENT_STATUS or 200 <= status < 300
    names = {cls.__name__ for cls in type(exc).__mro__}
    transient_names = {
        "APITimeoutError",
        "APIConnectionError",
        "APIResponseValidationError",
        "TimeoutException",
        "ConnectError",
        "RemoteProtocolError",
        "ReadError",
        "JSONDecodeError",
        "TransientError",
    }
    return bool(names & transient_names) or isinstance(exc, (TimeoutError, ConnectionError))


def retry_after(exc: BaseException, now: datetime | None = None) -> float | None:
    """Seconds a server asked us to wait (`Retry-After`, as seconds or as an HTTP date), if it said so readably."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(str(value))
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000": UTC, by RFC 5322
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


def backoff(attempt: int, base_delay: float, max_delay: float) -> float:
    """Exponential backoff with jitter after the 0-based `attempt` failed: half to all of base * 2**attempt,
    capped at max_delay, so that concurrent callers hit by one outage do not all come back at once."""
    return min(max_delay, base_delay * 2**attempt) * (0.5 + random.random() / 2)


def retry_wait(
    exc: BaseException | None, attempt: int, base_delay: float, max_delay: float, now: datetime | None = None
) -> float:
    """Seconds to wait after the 0-based `attempt` failed with `exc`: the server's Retry-After when it gave one,
    else exponential backoff with jitter; never more than MAX_WAIT."""
    delay = retry_after(exc, now) if exc is not None else None
    if delay is None:
        delay = backoff(attempt, base_delay, max_delay)
    return min(delay, MAX_WAIT)


def _retryable(exc: BaseException) -> bool:
    """A transient failure of the request itself; never a budget refusal, nor an interrupt."""
    return isinstance(exc, Exception) and not isinstance(exc, BudgetExceeded) and is_transient(exc)


def _sleep(seconds: float) -> None:
    """time.sleep, looked up on each call (tests replace it to record the waits)."""
    with phase("waiting"):
        time.sleep(seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts a request gets and how long to wait between them, as a tenacity `Retrying`."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    made: int = 0
    """Attempts made before the Retrying starts (its first attempt is attempt `made + 1`)."""

    def wait(self, state: tenacity.RetryCallState) -> float:
        """Tenacity's wait: retry_wait for the attempt that just failed (nothing drawn after the last one)."""
        number = state.attempt_number + self.made
        if number >= self.max_attempts:
            return 0.0  # tenacity asks before it checks the stop: no retry follows, so draw no jitter
        exc = state.outcome.exception() if state.outcome is not None else None
        return retry_wait(exc, number - 1, self.base_delay, self.max_delay)

    def retrying(self) -> tenacity.Retrying:
        """A fresh Retrying: transient failures retried up to max_attempts, anything else raised as it is."""
        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts - self.made),
            wait=self.wait,
            retry=tenacity.retry_if_exception(_retryable),
            sleep=_sleep,
            reraise=True,
        )

    def after_first(self, exc: Exception) -> tenacity.Retrying | None:
        """For a first attempt made outside tenacity (most calls need no other, and a Retrying costs a tenth of a fast
        call) that failed with `exc`: None when tenacity would not retry it (not retryable, or no attempt left), else
        the wait tenacity would have drawn is slept and a Retrying for the attempts left returned."""
        if self.made != 0 or self.max_attempts <= 1 or not _retryable(exc):
            return None
        _sleep(retry_wait(exc, 0, self.base_delay, self.max_delay))
        return replace(self, made=1).retrying()
