"""Importable pieces for flow tests: output models, function nodes, routers, a state type and a scripted model.

They live at module level in an importable module so artifacts can reference them by import path
(load with ``allow=["tests"]``).
"""

from __future__ import annotations

import json
from typing import Any, Literal, TypedDict

from langchain_core.messages import BaseMessage
from pydantic import BaseModel, Field

from microprompts import Flow, FunctionNode, MicroPrompt
from microprompts.testing import ScriptedChatModel


class Triage(BaseModel):
    label: Literal["urgent", "normal"] = Field(description="How urgent the ticket is.")


class Reply(BaseModel):
    reply: str


class Inner(BaseModel):
    name: str
    score: float | None = None


class Rich(BaseModel):
    """An output with a nested model, a list, an optional field and an enum."""

    items: list[Inner]
    kind: Literal["x", "y"] = "x"
    note: str | None = None


class TicketState(TypedDict, total=False):
    text: str
    label: str
    reply: str


def escalate(state: dict[str, Any]) -> dict[str, Any]:
    return {"reply": f"ESCALATED: {state['text']}"}


def shout(state: dict[str, Any]) -> dict[str, Any]:
    return {"reply": state["reply"].upper()}


def route_by_label(state: dict[str, Any]) -> str:
    return state["label"]


def route_nowhere(state: dict[str, Any]) -> str:
    return "mystery"


CLASSIFY = MicroPrompt("classify", task="Classify the ticket's urgency.", inputs={"text": "The ticket."}, output=Triage)
ANSWER = MicroPrompt("answer", task="Write a short reply to the ticket.", inputs={"text": "The ticket."}, output=Reply)
ESCALATE = FunctionNode("escalate", escalate, reads=["text"], writes=["reply"])


def triage_flow() -> Flow:
    """classify -> (urgent: escalate | normal: answer)."""
    return (
        Flow("triage")
        .add(CLASSIFY)
        .add(ANSWER)
        .add(ESCALATE)
        .edge("__start__", "classify")
        .branch("classify", route_by_label, {"urgent": "escalate", "normal": "answer"})
    )


def respond(messages: list[BaseMessage]) -> str:
    """A scripted model for the triage flow: 'fire' is urgent; a reply echoes the ticket."""
    system, user = str(messages[0].content), str(messages[1].content)
    text = user.split("text: ", 1)[-1]
    if "urgency" in system:
        return json.dumps({"label": "urgent" if "fire" in text else "normal"})
    return json.dumps({"reply": f"re: {text}"})


def triage_model(**kwargs: Any) -> ScriptedChatModel:
    return ScriptedChatModel(replies=respond, **kwargs)
