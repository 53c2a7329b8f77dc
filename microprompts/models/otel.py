"""OpenTelemetry spans from LangChain runs: a callback handler that turns each run's start and end into a span, nested
by the runs' parents, so an optimization (optimize -> candidate -> row -> flow -> node -> chat model) or a served flow
shows up in any OTel backend. It needs the optional extra: ``pip install 'microprompts[otel]'``; import it as
``from microprompts.models.otel import OTelCallbackHandler`` (the package never imports it).

    handler = OTelCallbackHandler()                 # the global tracer provider, or tracer=...
    optimize(flow, ..., config={"callbacks": [handler]})
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult

try:
    from opentelemetry import trace
    from opentelemetry.trace import Span, Status, StatusCode, Tracer
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "microprompts.models.otel needs OpenTelemetry, an optional extra: pip install 'microprompts[otel]'"
    ) from exc

__all__ = ["HIDDEN_TAG", "OTelCallbackHandler"]

HIDDEN_TAG = "langsmith:hidden"
"""LangGraph's tag for its internal runs (channel writes, ...): no span of their own, their children go one up."""

_Attr = str | bool | int | float | list[str]


def _attr(value: Any) -> _Attr | None:
    """A value OTel takes as an attribute (JSON text for anything else, cut short; None is left out)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    return json.dumps(value, default=str, ensure_ascii=False)[:2000]


class OTelCallbackHandler(BaseCallbackHandler):
    """One OTel span per LangChain run (chains, chat models, tools), child of its parent run's span (or of the span
    current when the top run starts), with attributes: the run's kind, tags and metadata; a chat model's model name,
    token counts and whether the call cache answered it (``microprompts.cached``); a run's score where it reports
    one (``microprompts.score``: rows, candidates, optimize)."""

    def __init__(self, tracer: Tracer | None = None, *, skip_hidden: bool = True) -> None:
        self.tracer = tracer or trace.get_tracer("microprompts")
        self.skip_hidden = skip_hidden
        self._spans: dict[UUID, Span] = {}
        self._hidden: dict[UUID, UUID | None] = {}  # a hidden run -> its parent, so its children attach above it
        self._lock = threading.Lock()

    # --- bookkeeping -----------------------------------------------------------------------------
    def _parent_span(self, parent_run_id: UUID | None) -> Span | None:
        with self._lock:
            while parent_run_id is not None and parent_run_id in self._hidden:
                parent_run_id = self._hidden[parent_run_id]
            return self._spans.get(parent_run_id) if parent_run_id is not None else None

    def _start(
        self,
        name: str,
        kind: str,
        run_id: UUID,
        parent_run_id: UUID | None,
        tags: Sequence[str] | None,
        metadata: dict[str, Any] | None,
        attributes: dict[str, Any],
    ) -> None:
        tags = list(tags or [])
        if self.skip_hidden and HIDDEN_TAG in tags:
            with self._lock:
                self._hidden[run_id] = parent_run_id
            return
        parent = self._parent_span(parent_run_id)
        context = trace.set_span_in_context(parent) if parent is not None else None
        attrs: dict[str, Any] = {"langchain.run_type": kind, "langchain.run_id": str(run_id)}
        if tags:
            attrs["langchain.tags"] = tags
        for key, value in (metadata or {}).items():
            if key == "langgraph_node" or not key.startswith(("langgraph_", "checkpoint_", "__")):
                attrs[f"langchain.metadata.{key}"] = _attr(value)
        attrs.update(attributes)
        span = self.tracer.start_span(
            name, context=context, attributes={k: v for k, v in attrs.items() if v is not None}
        )
        with self._lock:
            self._spans[run_id] = span

    def _end(self, run_id: UUID, attributes: dict[str, Any], error: BaseException | None = None) -> None:
        with self._lock:
            self._hidden.pop(run_id, None)
            span = self._spans.pop(run_id, None)
        if span is None:
            return
        for key, value in attributes.items():
            if (shown := _attr(value)) is not None:
                span.set_attribute(key, shown)
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:300]))
        span.end()

    # --- chains (flows, nodes, rows, candidates, optimize) ---------------------------------------
    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: dict[str, Any] | Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Open the chain's span."""
        name = kwargs.get("name") or (serialized or {}).get("name") or "chain"
        self._start(str(name), "chain", run_id, parent_run_id, tags, metadata, {})

    def on_chain_end(self, outputs: dict[str, Any] | Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Close the chain's span, with its score and error when its outputs report them."""
        attributes: dict[str, Any] = {}
        if isinstance(outputs, dict):
            score = outputs.get("score")
            if isinstance(score, (int, float)) and not isinstance(score, bool):
                attributes["microprompts.score"] = float(score)
            if outputs.get("error"):
                attributes["microprompts.error"] = str(outputs["error"])
        self._end(run_id, attributes)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Close the chain's span as failed."""
        self._end(run_id, {}, error)

    # --- chat models -----------------------------------------------------------------------------
    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Open the call's span: model, provider, parameters, and whether the cache answered it."""
        meta = metadata or {}
        params = kwargs.get("invocation_params") or {}
        model = meta.get("ls_model_name") or params.get("model") or params.get("model_name") or params.get("_type")
        name = kwargs.get("name") or (serialized or {}).get("name") or model or "chat_model"
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": meta.get("ls_provider"),
            "gen_ai.request.model": _attr(model),
            "gen_ai.request.temperature": _attr(params.get("temperature")),
            "gen_ai.request.max_tokens": _attr(params.get("max_tokens")),
            "microprompts.cached": "cached" in (tags or []) or bool(meta.get("cached")),
        }
        self._start(str(name), "llm", run_id, parent_run_id, tags, metadata, attributes)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        """Close the call's span with its token counts and finish reason."""
        attributes: dict[str, Any] = {}
        for generations in response.generations:
            for generation in generations:
                message = getattr(generation, "message", None)
                usage = getattr(message, "usage_metadata", None) or {}
                if usage:
                    attributes["gen_ai.usage.input_tokens"] = int(usage.get("input_tokens") or 0)
                    attributes["gen_ai.usage.output_tokens"] = int(usage.get("output_tokens") or 0)
                finish = (getattr(message, "response_metadata", None) or {}).get("finish_reason")
                if finish:
                    attributes["gen_ai.response.finish_reasons"] = [str(finish)]
                break
            break
        self._end(run_id, attributes)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Close the call's span as failed."""
        self._end(run_id, {}, error)

    # --- tools -----------------------------------------------------------------------------------
    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Open the tool's span."""
        name = kwargs.get("name") or (serialized or {}).get("name") or "tool"
        self._start(str(name), "tool", run_id, parent_run_id, tags, metadata, {})

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Close the tool's span."""
        self._end(run_id, {})

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Close the tool's span as failed."""
        self._end(run_id, {}, error)
