"""A reply from the call cache fires the callback events a real call does (chat model start, LLM end with the cached
reply), tagged `cached`, under the run that asked: traces show every request, paid or not."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult
from pydantic import BaseModel

from microprompts.flows import Flow
from microprompts.models import CallCache, ModelCaller
from microprompts.models.tracing import CACHED_TAG
from microprompts.nodes import MicroPrompt
from microprompts.testing import ScriptedChatModel


class Answer(BaseModel):
    answer: str


class Events(BaseCallbackHandler):
    """Records chat-model starts (tags, parent) and LLM ends (the reply text)."""

    def __init__(self) -> None:
        self.starts: list[dict[str, Any]] = []
        self.ends: list[str] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.starts.append({"tags": kwargs.get("tags") or [], "parent": kwargs.get("parent_run_id"), **kwargs})

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        self.ends.append(response.generations[0][0].text)


def test_a_cache_hit_fires_the_events_of_a_call_tagged_cached(tmp_path: Path) -> None:
    model = ScriptedChatModel(replies=[{"answer": "forty-two"}])  # one reply: a second real call would fail
    node = MicroPrompt("answer", task="Answer.", inputs=["question"], output=Answer)
    graph = Flow("qa").then(node).compile(model=model, caller=ModelCaller(cache=CallCache(tmp_path / "c.sqlite")))
    first, second = Events(), Events()
    graph.invoke({"question": "q?"}, config={"callbacks": [first], "tags": ["mine"]})
    state = graph.invoke({"question": "q?"}, config={"callbacks": [second], "tags": ["mine"]})
    assert state["answer"] == "forty-two" and model.call_count == 1
    assert len(first.starts) == 1 and CACHED_TAG not in first.starts[0]["tags"]
    assert len(second.starts) == 1 and len(second.ends) == 1
    hit = second.starts[0]
    assert CACHED_TAG in hit["tags"] and "mine" in hit["tags"]  # the run's own tags too
    assert hit["metadata"]["cached"] is True
    assert hit["parent"] is not None  # under the node's run, as the real call was
    assert second.ends == first.ends == ['{"answer": "forty-two"}']


def test_no_listener_no_events_and_the_hit_still_answers(tmp_path: Path) -> None:
    model = ScriptedChatModel(replies=[{"answer": "x"}])
    caller = ModelCaller(cache=CallCache(tmp_path / "c.sqlite"))
    node = MicroPrompt("answer", task="Answer.", inputs=["question"], output=Answer)
    graph = Flow("qa").then(node).compile(model=model, caller=caller)
    graph.invoke({"question": "q?"})
    assert graph.invoke({"question": "q?"})["answer"] == "x"
    assert caller.meter.snapshot().cached_calls == 1
