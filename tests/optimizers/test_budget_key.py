"""The budget charges a request under the very key the call cache stores it under: one key, computed once."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from microprompts.models import CallCache, ModelCaller, completion_key, model_identity, request_key
from microprompts.optimizers import Budget
from microprompts.optimizers.budget import BudgetedCaller, BudgetTracker, Role
from microprompts.testing import ScriptedChatModel

MESSAGES = [SystemMessage(content="Say a label."), HumanMessage(content="text: x")]
SCHEMA = {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}
BASE: dict[str, Any] = dict(schema=SCHEMA, temperature=0.0, max_tokens=64, sample=0)


class KeyRecordingTracker(BudgetTracker):
    """A tracker with no limits that records every key it is asked to charge, repeats included."""

    def __init__(self) -> None:
        super().__init__(Budget())
        self.asked: list[str] = []

    def reserve(self, role: Role, key: str) -> bool:
        """Record the key, then charge as usual."""
        self.asked.append(key)
        return super().reserve(role, key)


def test_the_key_is_the_canonical_hash_of_the_request_fields() -> None:
    """Pinned, so caches written before keep hitting and resumed runs charge the same keys."""
    model = ScriptedChatModel(name="m", replies=["x"])
    expected = request_key(
        {
            "model": model_identity(model),
            "params": {"temperature": 0.0, "max_tokens": 64},
            "messages": [["system", "Say a label."], ["human", "text: x"]],
            "schema": SCHEMA,
            "sample": 0,
        }
    )
    assert completion_key(model, MESSAGES, SCHEMA, 0.0, 64, 0) == expected


def test_a_request_is_charged_once_under_the_key_it_is_cached_under() -> None:
    cache = CallCache(":memory:")
    tracker = KeyRecordingTracker()
    model = ScriptedChatModel(replies=['{"label": "a"}'], repeat_last=True)
    caller = BudgetedCaller(cache, tracker, "task")
    first = caller.complete(model, MESSAGES, **BASE)
    again = caller.complete(model, MESSAGES, **BASE)
    assert not first.cached and again.cached and model.call_count == 1
    (charged,) = set(tracker.asked)
    assert cache.get(charged) is not None and len(cache) == 1
    assert tracker.total.task_calls == 1
    assert charged == completion_key(model, MESSAGES, SCHEMA, 0.0, 64, 0)
    assert ModelCaller(cache=cache).complete(model, MESSAGES, **BASE).cached  # the plain caller's key is the same


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.5},
        {"max_tokens": 65},
        {"sample": 1},
        {"schema": None},
        {"messages": [MESSAGES[0], HumanMessage(content="text: y")]},
    ],
)
def test_a_changed_field_changes_the_charged_key_and_the_cached_key_alike(change: dict[str, Any]) -> None:
    cache = CallCache(":memory:")
    tracker = KeyRecordingTracker()
    model = ScriptedChatModel(replies=['{"label": "a"}'], repeat_last=True)
    caller = BudgetedCaller(cache, tracker, "task")
    caller.complete(model, MESSAGES, **BASE)
    request = {**BASE, "messages": MESSAGES, **change}
    messages = request.pop("messages")
    assert not caller.complete(model, messages, **request).cached
    assert len(set(tracker.asked)) == 2 and tracker.total.task_calls == 2 and len(cache) == 2
    assert all(cache.get(key) is not None for key in tracker.asked)


def test_a_truncated_reply_is_cached_under_the_charged_key() -> None:
    cache = CallCache(":memory:")
    tracker = KeyRecordingTracker()
    model = ScriptedChatModel(replies=["cut off"], finish_reason="length")
    BudgetedCaller(cache, tracker, "optimizer").complete(model, MESSAGES, max_tokens=5)
    (charged,) = tracker.asked
    assert cache.get(charged) is not None and len(cache) == 1 and tracker.total.optimizer_calls == 1
