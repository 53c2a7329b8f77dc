"""`OTelCallbackHandler`: a failing run's span is marked as an error; top runs nest under the span current when they
start; hidden runs (LangChain's `langsmith:hidden` tag) get no span of their own."""

from __future__ import annotations

from uuid import uuid4

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from pydantic import BaseModel

from microprompts.evals import evaluate
from microprompts.flows import Flow
from microprompts.models import ModelCaller
from microprompts.models.otel import HIDDEN_TAG, OTelCallbackHandler
from microprompts.nodes import MicroPrompt
from microprompts.testing import ScriptedChatModel


class Answer(BaseModel):
    answer: str


def _traced() -> tuple[InMemorySpanExporter, TracerProvider, OTelCallbackHandler]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter, provider, OTelCallbackHandler(tracer=provider.get_tracer("test"))


def test_a_failing_row_marks_its_spans() -> None:
    exporter, provider, handler = _traced()
    model = ScriptedChatModel(replies=[ValueError("bad request")])
    flow = Flow("qa").then(MicroPrompt("answer", task="Answer.", inputs=["question"], output=Answer))
    rows = [{"inputs": {"question": "q?"}, "output": {"answer": "a"}}]
    with provider.get_tracer("user").start_as_current_span("my job"):
        result = evaluate(
            flow, rows, model=model, caller=ModelCaller(cache=None, max_attempts=1), config={"callbacks": [handler]}
        )
    assert result.errors == 1
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert spans["evaluate"].parent is not None and spans["evaluate"].parent.span_id == spans["my job"].context.span_id  # type: ignore[union-attr]
    assert "bad request" in str(spans["row"].attributes["microprompts.error"])  # type: ignore[index]
    assert spans["answer"].status.status_code == StatusCode.ERROR
    llm = [s for s in exporter.get_finished_spans() if s.attributes.get("langchain.run_type") == "llm"]  # type: ignore[union-attr]
    assert len(llm) == 1 and llm[0].status.status_code == StatusCode.ERROR


def test_a_hidden_run_gets_no_span_and_its_children_attach_above_it() -> None:
    exporter, _, handler = _traced()
    top, hidden, child = uuid4(), uuid4(), uuid4()
    handler.on_chain_start(None, {}, run_id=top, name="top")
    handler.on_chain_start(None, {}, run_id=hidden, parent_run_id=top, tags=[HIDDEN_TAG], name="write")
    handler.on_chain_start(None, {}, run_id=child, parent_run_id=hidden, name="child")
    for run in (child, hidden, top):
        handler.on_chain_end({"score": 0.5}, run_id=run)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"top", "child"}
    assert spans["child"].parent is not None and spans["child"].parent.span_id == spans["top"].context.span_id  # type: ignore[union-attr]
    assert spans["top"].attributes["microprompts.score"] == 0.5  # type: ignore[index]
