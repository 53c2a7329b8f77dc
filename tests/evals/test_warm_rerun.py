"""A warm re-run makes no model call, failed rows included: a deterministic request's reply is cached whether or not
it validated (cut off by max_tokens too); a transport fault is not cached, so its row is asked again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage
from pydantic import BaseModel

from microprompts.evals import evaluate
from microprompts.flows import Flow
from microprompts.models import CallCache, ModelCaller
from microprompts.nodes import MicroPrompt
from microprompts.testing import ScriptedChatModel


class Label(BaseModel):
    label: str


ROWS = [{"inputs": {"text": f"t{i}"}, "output": {"label": "ok"}, "id": str(i)} for i in range(6)]


def _flow() -> Flow:
    return Flow("labels").then(MicroPrompt("label", task="Label the text.", inputs=["text"], output=Label))


def _reply(messages: list[BaseMessage]) -> Any:
    """Rows t0..t2 answer well; the others ramble past max_tokens before their label, repair turn included (a
    cut-off JSON that holds no label, so nothing of it can be kept)."""
    text = "\n".join(str(m.content) for m in messages)
    return {"label": "ok"} if any(f"t{i}" in text for i in range(3)) else '{"why": "because'


def test_a_warm_rerun_makes_no_call_even_for_rows_that_failed(tmp_path: Path) -> None:
    model = ScriptedChatModel(replies=_reply, finish_reason="length")
    caller = ModelCaller(cache=CallCache(tmp_path / "calls.sqlite"))
    cold = evaluate(_flow(), ROWS, model=model, caller=caller)
    assert cold.errors == 3 and cold.usage.calls == 3 + 3 * 2  # a failed row: its call and the repair turn
    warm = evaluate(_flow(), ROWS, model=model, caller=caller)
    assert warm.usage.calls == 0 and model.call_count == 9
    assert [r.error for r in warm.rows] == [r.error for r in cold.rows]


def test_a_transport_fault_is_not_cached(tmp_path: Path) -> None:
    faults = iter([ConnectionError("reset")] * 4)

    def flaky(messages: list[BaseMessage]) -> Any:
        fault = next(faults, None)
        if fault is not None:
            raise fault
        return {"label": "ok"}

    model = ScriptedChatModel(replies=flaky)
    caller = ModelCaller(cache=CallCache(tmp_path / "calls.sqlite"), max_attempts=4, base_delay=0.0)
    first = evaluate(_flow(), ROWS[:1], model=model, caller=caller)
    assert first.errors == 1
    second = evaluate(_flow(), ROWS[:1], model=model, caller=caller)
    assert second.errors == 0 and second.usage.calls == 1
