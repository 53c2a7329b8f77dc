"""The engine tests' simulated topic task served over HTTP by the fake OpenAI server, for the fault and kill tests.

`topic_responder()` answers a chat-completions request exactly as `engine_helpers.model()` (the simulated model)
would answer the same messages and parameters: right with a chance that grows with JSON data, a reasoning field and
worked examples, decided by a stable hash of the row, so different prompts score differently and every run of the
same prompts gets the same replies. A repair request (the original turns, the bad reply, a plea) is answered from its
first user turn, like the original request.
"""

from __future__ import annotations

import json
import time
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from tests.fakes.openai_server import Responder
from tests.optimizers import engine_helpers as h

_ROLES = {"system": SystemMessage, "developer": SystemMessage, "user": HumanMessage, "assistant": AIMessage}


def to_messages(request: dict[str, Any]) -> list[BaseMessage]:
    """The request's chat turns as LangChain messages."""
    out: list[BaseMessage] = []
    for message in request.get("messages") or []:
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        out.append(_ROLES[message.get("role", "user")](content=str(content or "")))
    return out


def topic_responder(delay: float = 0.0) -> Responder:
    """A responder for the simulated topic task; `delay` seconds per call make a run last long enough to kill."""
    sim = h.model("served")

    def respond(request: dict[str, Any]) -> str:
        if delay:
            time.sleep(delay)
        kwargs = {
            "temperature": request.get("temperature") or 0.0,
            "max_tokens": request.get("max_tokens"),
            "seed": request.get("seed"),
            "response_format": request.get("response_format"),
        }
        return json.dumps(sim.reply_for(to_messages(request), **kwargs))

    return respond
