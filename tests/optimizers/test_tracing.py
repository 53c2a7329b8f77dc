"""An optimization is one traced run tree: optimize -> candidate -> row -> (flow) -> node -> chat model, cache hits
included, seen by LangChain callbacks and, through `microprompts.models.otel`, as OpenTelemetry spans."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from langchain_core.tracers.base import BaseTracer
from langchain_core.tracers.schemas import Run
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel

from microprompts.evals import exact_match
from microprompts.flows import Flow
from microprompts.models.otel import OTelCallbackHandler
from microprompts.nodes import MicroPrompt
from microprompts.optimizers import Optimizer, SearchSpace, one_of
from microprompts.testing import ScriptedChatModel


class Clean(BaseModel):
    clean: str


class Label(BaseModel):
    label: str


def _reply(messages: list[BaseMessage]) -> dict[str, Any]:
    text = "\n".join(str(m.content) for m in messages)
    return {"clean": "hello"} if "Tidy" in text else {"label": "greeting"}


def _space() -> SearchSpace:
    """Two nodes; the two candidates differ in the second only, so the first one's requests repeat (cache hits)."""
    flow = (
        Flow("two")
        .then(MicroPrompt("tidy", task="Tidy the text.", inputs={"text": "Some text."}, output=Clean))
        .then(MicroPrompt("label_it", task="Label the text.", inputs={"clean": "The text."}, output=Label))
    )
    return SearchSpace(flow, {"label_it.params.data_format": one_of("markdown", "json")})


ROWS = [{"inputs": {"text": f"hi {i}"}, "output": {"label": "greeting"}, "id": str(i)} for i in range(2)]


def _optimize(config: dict[str, Any], model: ScriptedChatModel | None = None) -> Any:
    model = model or ScriptedChatModel(replies=_reply)
    optimizer = Optimizer(search="enumerate", model=model, progress=False)
    return optimizer.run(_space(), dev=ROWS, metric=exact_match("label"), config=config)  # type: ignore[arg-type]


def _tree(spans: tuple[ReadableSpan, ...]) -> tuple[list[ReadableSpan], dict[int, list[ReadableSpan]]]:
    roots: list[ReadableSpan] = []
    children: dict[int, list[ReadableSpan]] = {}
    for span in spans:
        if span.parent is None:
            roots.append(span)
        else:
            children.setdefault(span.parent.span_id, []).append(span)
    return roots, children


def _below(span: ReadableSpan, children: dict[int, list[ReadableSpan]]) -> list[ReadableSpan]:
    out = []
    for child in children.get(span.context.span_id, []):  # type: ignore[union-attr]
        out += [child, *_below(child, children)]
    return out


def test_a_two_candidate_optimization_is_one_span_tree_with_cache_hits() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    handler = OTelCallbackHandler(tracer=provider.get_tracer("test"))
    result = _optimize({"callbacks": [handler], "tags": ["nightly"]})
    roots, children = _tree(exporter.get_finished_spans())
    (top,) = roots
    assert top.name == "optimize" and top.attributes["microprompts.score"] == result.best_score  # type: ignore[index]
    candidates = children[top.context.span_id]  # type: ignore[union-attr]
    assert [c.name for c in candidates] == ["candidate", "candidate"]
    ids = {c.attributes["langchain.metadata.candidate"] for c in candidates}  # type: ignore[index]
    assert ids == {result.baseline.id, *(e["id"] for e in result.history if e["event"] == "candidate")}
    for candidate in candidates:
        rows = children[candidate.context.span_id]  # type: ignore[union-attr]
        assert [r.name for r in rows] == ["row", "row"]
        for row in rows:
            assert row.attributes["microprompts.score"] == 1.0  # type: ignore[index]
            below = _below(row, children)
            nodes = [s for s in below if s.name in ("tidy", "label_it")]
            assert sorted(n.name for n in nodes) == ["label_it", "tidy"]
            chats = [s for s in below if s.attributes.get("langchain.run_type") == "llm"]  # type: ignore[union-attr]
            assert len(chats) == 2 and all(c.attributes["gen_ai.usage.input_tokens"] > 0 for c in chats)  # type: ignore[index,operator]
            assert all("nightly" in c.attributes["langchain.tags"] for c in chats)  # type: ignore[index,operator]
    chats = [s for s in exporter.get_finished_spans() if s.attributes.get("langchain.run_type") == "llm"]  # type: ignore[union-attr]
    cached = [c for c in chats if c.attributes["microprompts.cached"]]  # type: ignore[index]
    assert cached and len(cached) < len(chats)
    # The second candidate changed only `label_it`: its `tidy` requests repeat the first's, answered by the cache.
    parent = {c.context.span_id: p for p, cs in children.items() for c in cs}  # type: ignore[union-attr]
    names = {s.context.span_id: s.name for s in exporter.get_finished_spans()}  # type: ignore[union-attr]
    second = [s for s in _below(candidates[1], children) if s.attributes.get("langchain.run_type") == "llm"]  # type: ignore[union-attr]
    tidy = [s for s in second if names[parent[s.context.span_id]] == "tidy"]  # type: ignore[union-attr]
    assert len(tidy) == 2 and all(s.attributes["microprompts.cached"] for s in tidy)  # type: ignore[index]


class Collected(BaseTracer):
    """A LangSmith-style tracer: keeps each finished root run, its child runs nested below it."""

    def __init__(self) -> None:
        super().__init__()
        self.roots: list[Run] = []

    def _persist_run(self, run: Run) -> None:
        self.roots.append(run)


def test_a_langsmith_style_tracer_sees_one_nested_run_tree() -> None:
    tracer = Collected()
    _optimize({"callbacks": [tracer], "metadata": {"experiment": "e1"}})
    (root,) = tracer.roots
    assert root.name == "optimize" and root.outputs is not None and root.outputs["score"] == 1.0
    assert [c.name for c in root.child_runs] == ["candidate", "candidate"]
    for candidate in root.child_runs:
        assert [r.name for r in candidate.child_runs] == ["row", "row"]
        for row in candidate.child_runs:
            (flow,) = row.child_runs
            assert flow.name == "two" and [n.name for n in flow.child_runs] == ["tidy", "label_it"]
            chats = [c for n in flow.child_runs for c in n.child_runs if c.run_type == "llm"]
            assert len(chats) == 2 and all((c.extra or {}).get("metadata", {}).get("experiment") == "e1" for c in chats)


def test_the_configured_model_answers_every_candidate() -> None:
    default, configured = ScriptedChatModel(replies=_reply), ScriptedChatModel(replies=_reply)
    result = _optimize({"configurable": {"model": configured}}, default)
    assert configured.call_count > 0 and default.call_count == 0 and result.best_score == 1.0


def test_the_otel_module_names_the_extra_when_opentelemetry_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "microprompts.models.otel")
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # type: ignore[arg-type]
    with pytest.raises(ImportError, match=r"microprompts\[otel\]"):
        importlib.import_module("microprompts.models.otel")
