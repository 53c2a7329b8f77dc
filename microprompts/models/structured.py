"""Structured output through a chat model's own `with_structured_output` (tool calling or a native JSON mode), for
the models that have one: the local model takes a grammar and OpenAI-compatible servers a `response_format` instead,
and a model with neither is prompted for JSON and its reply parsed. The node validates what comes back either way."""

from __future__ import annotations

import json
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from pydantic import BaseModel

from microprompts.models.local import LocalChatModel
from microprompts.models.spec import is_openai

__all__ = ["invoke_structured", "supports_structured_output"]

# The call's parameters that a model copy takes as fields (`with_structured_output` drops invoke-time kwargs).
_FIELDS = ("temperature", "max_tokens", "seed")


def supports_structured_output(model: BaseChatModel) -> bool:
    """Whether a model implements `with_structured_output` (itself, or through `bind_tools`) and is not one that takes
    a grammar or `response_format` from the caller (the local model, OpenAI and OpenAI-compatible servers)."""
    if isinstance(model, LocalChatModel) or is_openai(model):
        return False
    cls = type(model)
    return (
        cls.with_structured_output is not BaseChatModel.with_structured_output
        or cls.bind_tools is not BaseChatModel.bind_tools
    )


def _with_params(model: BaseChatModel, kwargs: dict[str, Any]) -> BaseChatModel:
    """A copy of `model` with the call's temperature, max tokens and seed set where it has such fields."""
    fields = type(model).model_fields
    update = {k: kwargs[k] for k in _FIELDS if k in kwargs and k in fields}
    if not update:
        return model
    try:
        return model.model_copy(update=update)
    except Exception:  # noqa: BLE001 - a model that cannot be copied is asked with its own settings
        return model


def _titled(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with a title (LangChain names the tool after it) and a description."""
    out = dict(schema)
    out.setdefault("title", "output")
    out.setdefault("description", "The answer.")
    return out


def _raw_text(raw: Any) -> str:
    """A raw reply's text: its first tool call's arguments as JSON, else its content."""
    calls = getattr(raw, "tool_calls", None) or []
    if calls:
        return json.dumps(calls[0].get("args", {}))
    content = getattr(raw, "content", "")
    return content if isinstance(content, str) else json.dumps(content)


def invoke_structured(
    model: BaseChatModel, messages: list[BaseMessage], schema: dict[str, Any], kwargs: dict[str, Any]
) -> AIMessage:
    """Ask through `with_structured_output(schema, include_raw=True)`: an AIMessage whose text is the parsed object as
    JSON (the raw reply's when it did not parse, so the node's repair turn sees it), with the raw reply's usage and
    finish reason."""
    runnable = _with_params(model, kwargs).with_structured_output(_titled(schema), include_raw=True)
    out = runnable.invoke(messages)
    raw: Any = None
    parsed: Any = out
    if isinstance(out, dict) and "parsed" in out and "raw" in out:
        raw, parsed = out["raw"], out["parsed"]
    if isinstance(parsed, BaseModel):
        parsed = parsed.model_dump(mode="json")
    text = json.dumps(parsed) if parsed is not None else _raw_text(raw)
    return AIMessage(
        content=text,
        usage_metadata=getattr(raw, "usage_metadata", None),
        response_metadata=dict(getattr(raw, "response_metadata", None) or {}),
    )
