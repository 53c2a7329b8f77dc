"""`evaluate(config=...)`: the user's RunnableConfig reaches every row's flow run (callbacks, tags, metadata,
configurable, recursion limit), merged with the recorder the evaluation sets, under one traced "evaluate" run."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from pydantic import BaseModel

from microprompts.evals import evaluate
from microprompts.flows import Flow
from microprompts.models import ModelCaller
from microprompts.nodes import MicroPrompt
from microprompts.testing import ScriptedChatModel


class Answer(BaseModel):
    answer: str


class Runs(BaseCallbackHandler):
    """Records every run's name, parent, tags and metadata."""

    def __init__(self) -> None:
        self.runs: dict[UUID, dict[str, Any]] = {}

    def _add(self, name: str, kind: str, run_id: UUID, kwargs: dict[str, Any]) -> None:
        self.runs[run_id] = {
            "name": name,
            "kind": kind,
            "parent": kwargs.get("parent_run_id"),
            "tags": kwargs.get("tags") or [],
            "metadata": kwargs.get("metadata") or {},
        }

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._add(kwargs.get("name") or "", "chain", run_id, kwargs)

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._add("chat", "llm", run_id, kwargs)

    def named(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.runs.values() if r["name"] == name]

    def ancestors(self, run: dict[str, Any]) -> list[str]:
        out = []
        while run["parent"] is not None:
            run = self.runs[run["parent"]]
            out.append(run["name"])
        return out


ROWS = [{"inputs": {"question": f"q{i}?"}, "output": {"answer": "configured"}, "id": f"r{i}"} for i in range(3)]


def _flow() -> Flow:
    return Flow("qa").then(MicroPrompt("answer", task="Answer.", inputs=["question"], output=Answer))


def _match(example: Any, prediction: dict[str, Any]) -> float:
    return float(prediction.get("answer") == example["output"]["answer"])


def test_the_config_reaches_every_row_and_node_call() -> None:
    default = ScriptedChatModel(replies=[{"answer": "default"}], repeat_last=True)
    configured = ScriptedChatModel(replies=[{"answer": "configured"}], repeat_last=True)
    runs = Runs()
    config = {
        "callbacks": [runs],
        "tags": ["nightly"],
        "metadata": {"suite": "qa"},
        "configurable": {"model": configured},
        "run_name": "qa eval",
    }
    result = evaluate(_flow(), ROWS, _match, model=default, caller=ModelCaller(cache=None), config=config)  # type: ignore[arg-type]
    assert result.score == 1.0 and default.call_count == 0 and configured.call_count == 3
    assert result.rows[0].traces[0].node == "answer"  # the evaluation's own recorder still got the traces
    (top,) = runs.named("qa eval")
    assert top["parent"] is None
    rows = runs.named("row")
    assert len(rows) == 3 and all(runs.ancestors(r) == ["qa eval"] for r in rows)
    chats = [r for r in runs.runs.values() if r["kind"] == "llm"]
    assert len(chats) == 3
    for chat in chats:
        assert runs.ancestors(chat)[:2] == ["answer", "qa"] and runs.ancestors(chat)[-2:] == ["row", "qa eval"]
        assert "nightly" in chat["tags"] and chat["metadata"]["suite"] == "qa"
    assert {r["metadata"]["row_id"] for r in rows} == {"r0", "r1", "r2"}


def test_a_recursion_limit_in_the_config_is_the_rows_limit() -> None:
    model = ScriptedChatModel(replies=[{"answer": "x"}], repeat_last=True)
    loop = (
        Flow("loop")
        .then(MicroPrompt("answer", task="Answer.", inputs=["question"], output=Answer))
        .branch("answer", _again, {"again": "answer", "done": "__end__"})
    )
    result = evaluate(loop, ROWS[:1], model=model, caller=ModelCaller(cache=None), config={"recursion_limit": 3})
    assert result.errors == 1 and "GraphRecursionError" in (result.rows[0].error or "")
    assert model.call_count <= 3  # not the default limit's 50 steps


def _again(state: dict[str, Any]) -> str:
    return "again"
