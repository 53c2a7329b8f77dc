"""What a running node needs: the model caller, model resolution, and a recorder of traces and usage."""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, Field

from microprompts.models import CallCache, ModelCaller, ModelLike, Usage, UsageMeter, resolve_model
from microprompts.models.spec import resolve_configured, trust_model
from microprompts.models.tracing import configured_model

RECORDER_KEY = "microprompts_recorder"


class NodeTrace(BaseModel):
    """One node's run inside one invocation: what it read, what it wrote, its raw replies, cost and error."""

    node: str
    kind: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    output: dict[str, Any] | None = None
    replies: list[str] = Field(default_factory=list)
    rendered_tokens: int = 0
    usage: Usage = Field(default_factory=Usage)
    seconds: float = 0.0
    error: str | None = None


class Recorder:
    """Collects node traces and usage for one invocation (thread-safe: parallel branches share it)."""

    def __init__(self) -> None:
        self.traces: list[NodeTrace] = []
        self.meter = UsageMeter()
        self._lock = threading.Lock()

    def add(self, trace: NodeTrace) -> None:
        """Append a node's trace."""
        with self._lock:
            self.traces.append(trace)


def state_dict(state: Any) -> dict[str, Any]:
    """A LangGraph state as a dict: TypedDict states already are; pydantic and dataclass states are dumped."""
    if isinstance(state, dict):
        return state
    if isinstance(state, BaseModel):
        return state.model_dump()
    if dataclasses.is_dataclass(state) and not isinstance(state, type):
        return dataclasses.asdict(state)
    raise TypeError(f"a node got a state of type {type(state).__name__}; expected a dict, pydantic model or dataclass")


def recorder_of(config: RunnableConfig | None) -> Recorder | None:
    """The recorder an evaluation passed in the config, if any."""
    return ((config or {}).get("configurable") or {}).get(RECORDER_KEY)


class Runtime:
    """Binds a compiled flow to a model caller and a default model. A node's own model wins; else the run's
    `configurable.model` (``graph.invoke(x, config={"configurable": {"model": ...}})``); else the default.
    `soft_dir` is the folder the flow's soft-prompt files lie in (its artifact's folder), if any."""

    def __init__(
        self, model: ModelLike | None = None, caller: ModelCaller | None = None, soft_dir: str | Path | None = None
    ) -> None:
        if isinstance(model, str):
            trust_model(model)  # the default model is the user's (compile(model=...), --model)
        self.default = model
        self.caller = caller or default_caller()
        self.soft_dir = None if soft_dir is None else str(soft_dir)
        self._models: dict[str, BaseChatModel] = {}

    @classmethod
    def for_config(cls, config: RunnableConfig | None, caller: ModelCaller | None = None) -> Runtime:
        """A runtime whose default model is `config`'s `configurable.model` (a bare node's, given its config): a spec
        string there is resolved as `model_for` resolves a configured one (its URL gets no API key unnamed)."""
        spec = ((config or {}).get("configurable") or {}).get("model")
        runtime = cls(caller=caller)
        if isinstance(spec, BaseChatModel):
            runtime.default = spec
        elif isinstance(spec, str) and spec.strip():
            runtime.default = resolve_configured(spec)
        return runtime

    def model_for(self, spec: ModelLike | None) -> BaseChatModel:
        """The node's own model if it names one, else the run's `configurable.model`, else the runtime's default
        (`local` when none). A configured spec string may come from an HTTP client (LangGraph's server passes the
        request's config through): its URL gets the API key only when the user named that URL too."""
        if spec is None:
            configured = configured_model()
            if isinstance(configured, BaseChatModel):
                return configured
            if isinstance(configured, str) and configured.strip() and configured != self.default:
                return resolve_configured(configured)
        chosen = spec if spec is not None else self.default
        if isinstance(chosen, BaseChatModel):
            return chosen
        key = chosen or "local"
        if key not in self._models:
            self._models[key] = resolve_model(key)
        return self._models[key]


_DEFAULT: ModelCaller | None = None
_DEFAULT_LOCK = threading.Lock()


def default_caller() -> ModelCaller:
    """A process-wide caller with the persistent cache (`MICROPROMPTS_CACHE=off` turns the cache off)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            off = os.environ.get("MICROPROMPTS_CACHE", "").lower() in {"off", "0", "none"}
            _DEFAULT = ModelCaller(cache=None if off else CallCache())
        return _DEFAULT
