"""A chat model with its own `with_structured_output` is asked through it (the node still validates what comes back);
the local model, OpenAI-compatible servers and models without one keep their grammar / prompt-and-parse paths."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import BaseModel

from microprompts.models import ModelCaller
from microprompts.models.structured import supports_structured_output
from microprompts.nodes import MicroPrompt, OutputParseError, Runtime
from microprompts.testing import ScriptedChatModel


class Answer(BaseModel):
    answer: str
    confidence: float


class StructuredFake(ScriptedChatModel):
    """A scripted model whose `with_structured_output` returns the scripted objects as parsed results."""

    schemas: list[dict[str, Any]] = []
    temperatures: list[Any] = []
    temperature: float | None = None

    def with_structured_output(self, schema: Any, *, include_raw: bool = False, **kwargs: Any) -> Runnable:
        self.schemas.append(schema)
        self.temperatures.append(self.temperature)

        def answer(messages: list[BaseMessage]) -> dict[str, Any]:
            index = self._record(messages, {})
            parsed: Any = self._next(index, messages)
            raw = AIMessage(content="", usage_metadata={"input_tokens": 5, "output_tokens": 2, "total_tokens": 7})
            return {"raw": raw, "parsed": parsed, "parsing_error": None} if include_raw else parsed

        return RunnableLambda(answer)


def _node() -> MicroPrompt:
    return MicroPrompt("answer", task="Answer the question.", inputs=["question"], output=Answer)


def test_a_model_with_structured_output_is_asked_through_it_and_its_result_validated() -> None:
    model = StructuredFake(replies=[{"answer": "yes", "confidence": 0.9}], schemas=[], temperatures=[])
    caller = ModelCaller(cache=None)
    out = _node().run({"question": "q?"}, Runtime(model=model, caller=caller))
    assert out == {"answer": "yes", "confidence": 0.9}
    assert len(model.schemas) == 1 and set(model.schemas[0]["properties"]) == {"answer", "confidence"}
    assert model.temperatures == [0.0]  # the node's temperature reaches the model copy that is asked
    assert caller.meter.snapshot().prompt_tokens == 5  # the raw reply's usage is the call's


def test_an_invalid_structured_result_gets_the_repair_turn_then_fails_clearly() -> None:
    bad = {"answer": "yes", "confidence": "very"}
    model = StructuredFake(replies=[bad, {"answer": "yes", "confidence": 1.0}], schemas=[], temperatures=[])
    assert _node().run({"question": "q?"}, Runtime(model=model, caller=ModelCaller(cache=None)))["confidence"] == 1.0
    assert len(model.schemas) == 2  # the repair turn went through with_structured_output too
    stubborn = StructuredFake(replies=[bad, bad], schemas=[], temperatures=[])
    with pytest.raises(OutputParseError, match="confidence"):
        _node().run({"question": "q?"}, Runtime(model=stubborn, caller=ModelCaller(cache=None)))


def test_models_without_it_keep_prompt_and_parse() -> None:
    plain = ScriptedChatModel(replies=['{"answer": "no", "confidence": 0.1}'])
    assert not supports_structured_output(plain)
    assert supports_structured_output(StructuredFake())
    out = _node().run({"question": "q?"}, Runtime(model=plain, caller=ModelCaller(cache=None)))
    assert out["answer"] == "no" and plain.calls[0].response_format is None
