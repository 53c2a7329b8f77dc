"""LangChain callbacks for work that is not a Runnable: a chain run around a piece of work (an optimization, a
candidate's evaluation, a row), so a tracer sees one nested run tree, and the events of a chat-model call answered
from the call cache, which a tracer must see as a call too."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from langchain_core.callbacks import CallbackManager, CallbackManagerForChainRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import ensure_config, patch_config, var_child_runnable_config

__all__ = ["CACHED_TAG", "TracedRun", "configured_model", "emit_cached_call", "traced_run", "with_run"]

CACHED_TAG = "cached"
"""The tag of a chat-model run answered from the call cache (its metadata also says ``cached: True``)."""


def configured_model() -> Any:
    """`configurable.model` of the run this code is inside (a LangGraph node, a traced run), or None."""
    config = var_child_runnable_config.get() or {}
    return (config.get("configurable") or {}).get("model")


def with_run(config: RunnableConfig | None, name: str | None = None, **metadata: Any) -> RunnableConfig:
    """`config` (or the current run's) with a run name and more metadata (None values left out), for a traced run
    started from it; the metadata reaches every run below it."""
    out = ensure_config(config)
    if name is not None:
        out["run_name"] = name
    out["metadata"] = {**out.get("metadata", {}), **{k: v for k, v in metadata.items() if v is not None}}
    return out


class TracedRun:
    """A chain run in progress: children run under `config`; `outputs` are reported when it ends."""

    def __init__(self, manager: CallbackManagerForChainRun, config: RunnableConfig) -> None:
        self.manager = manager
        self.config = config
        self.outputs: dict[str, Any] = {}


@contextmanager
def traced_run(
    config: RunnableConfig | None,
    name: str,
    inputs: dict[str, Any],
    *,
    tags: Sequence[str] = (),
) -> Iterator[TracedRun]:
    """A chain run (named by `config`'s run name, else `name`) as a child of `config`'s callbacks, or of the current
    run's when `config` is None. Inside, `run.config` is what its children run under, also set as the current config
    so calls made in this thread nest under it; the run ends with `run.outputs`, or with the error raised."""
    cfg = ensure_config(config)
    manager = CallbackManager.configure(
        inheritable_callbacks=cfg.get("callbacks"),
        inheritable_tags=cfg.get("tags"),
        local_tags=list(tags),
        inheritable_metadata=cfg.get("metadata"),
    )
    run_manager = manager.on_chain_start(None, inputs, run_id=cfg.get("run_id"), name=cfg.get("run_name") or name)
    run = TracedRun(run_manager, patch_config(cfg, callbacks=run_manager.get_child()))
    token = var_child_runnable_config.set(run.config)
    try:
        yield run
    except BaseException as exc:
        run_manager.on_chain_error(exc)
        raise
    else:
        run_manager.on_chain_end(run.outputs)
    finally:
        var_child_runnable_config.reset(token)


def _model_params(model: BaseChatModel, kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(invocation params, LangSmith params) of a call as the model itself would report them."""
    try:
        params = model._get_invocation_params(stop=None, **kwargs)
    except Exception:  # noqa: BLE001 - any model's params may be odd: report the call's own
        params = dict(kwargs)
    try:
        ls_params: dict[str, Any] = dict(model._get_ls_params(stop=None, **kwargs))
    except Exception:  # noqa: BLE001
        ls_params = {}
    return params, ls_params


def emit_cached_call(
    model: BaseChatModel, messages: list[BaseMessage], kwargs: dict[str, Any], message: AIMessage
) -> None:
    """Fire the events a real call of `model` would (chat model start, then LLM end with `message`) for a reply the
    call cache gave, under the current run, tagged `cached`: traces then show every request, paid or not."""
    config = ensure_config(None)
    params, ls_params = _model_params(model, kwargs)
    manager = CallbackManager.configure(
        config.get("callbacks"),
        model.callbacks,
        model.verbose,
        config.get("tags"),
        [*(model.tags or []), CACHED_TAG],
        {**config.get("metadata", {}), **ls_params},
        {**(model.metadata or {}), "cached": True},
    )
    if not manager.handlers:
        return  # nobody listens
    try:
        serialized: dict[str, Any] = model._serialized
    except Exception:  # noqa: BLE001 - a model that cannot serialize is traced by name only
        serialized = {"name": type(model).__name__}
    run_managers = manager.on_chat_model_start(
        serialized, [list(messages)], invocation_params=params, options={"stop": None}
    )
    result = LLMResult(generations=[[ChatGeneration(message=message)]])
    for run_manager in run_managers:
        run_manager.on_llm_end(result)
