"""The triage flow: four micro-prompts and a branch.

``extract`` pulls the product and a one-line issue from the ticket; ``classify`` picks a category and an
urgency (enums, so a small model cannot answer off-label); the router sends urgent tickets to ``escalate``
(a note for an internal team, and which team) and the rest to ``reply`` (a reply to the customer);
``finalize`` writes the route taken and the team that owns the ticket (``frontline`` for replies).

    START -> extract -> classify -(urgent)-> escalate -> finalize -> END
                                 -(normal)-> reply ----^
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.graph import START
from pydantic import BaseModel, Field
from typing_extensions import TypedDict  # pydantic (and LangGraph's input schema) need it on Python < 3.12

from microprompts import Flow, FunctionNode, MicroPrompt

Category = Literal["billing", "technical", "account", "shipping"]
Urgency = Literal["urgent", "normal"]
Team = Literal["billing", "engineering", "accounts", "logistics"]


class TriageState(TypedDict, total=False):
    """Everything the flow reads and writes."""

    ticket: str
    product: str
    issue: str
    category: str
    urgency: str
    team: str
    note: str
    reply: str
    route: str


class Extracted(BaseModel):
    """What the ticket is about."""

    product: str = Field(description="The product the customer writes about.")
    issue: str = Field(description="The problem in one short sentence.")


class Classified(BaseModel):
    """How to handle the ticket."""

    category: Category
    urgency: Urgency


class Escalation(BaseModel):
    """A hand-over to an internal team."""

    team: Team
    note: str = Field(description="Two sentences for the team: what happened and what is needed.")


class Reply(BaseModel):
    """The answer to the customer."""

    reply: str = Field(description="A short, friendly reply to the customer.")


extract = MicroPrompt(
    "extract",
    task="Read the support ticket and say which product it is about and what the problem is.",
    inputs={"ticket": "The customer's message."},
    output=Extracted,
)

classify = MicroPrompt(
    "classify",
    task="Classify the support ticket by category and urgency.",
    inputs={"ticket": "The customer's message.", "issue": "The problem in one sentence."},
    output=Classified,
)

escalate = MicroPrompt(
    "escalate",
    task="Write an escalation note for the internal team that should handle this ticket, and name that team.",
    inputs={"product": "The product.", "issue": "The problem.", "category": "The ticket's category."},
    output=Escalation,
)

reply = MicroPrompt(
    "reply",
    task="Write a short reply to the customer that acknowledges the problem and says what happens next.",
    inputs={"ticket": "The customer's message.", "product": "The product.", "issue": "The problem."},
    output=Reply,
    max_tokens=160,
)


def route_by_urgency(state: dict[str, Any]) -> str:
    """The branch label after ``classify``: the ticket's urgency."""
    return "urgent" if state.get("urgency") == "urgent" else "normal"


def finalize(state: dict[str, Any]) -> dict[str, Any]:
    """Record the route taken and the owning team (``frontline`` answers normal tickets itself)."""
    if state.get("urgency") == "urgent":
        return {"route": "escalate", "team": state.get("team", "")}
    return {"route": "reply", "team": "frontline"}


finish = FunctionNode("finalize", finalize, reads=("urgency",), writes=("route", "team"))

flow = (
    Flow("triage", state=TriageState)
    .add(extract)
    .add(classify)
    .add(escalate)
    .add(reply)
    .add(finish)
    .edge(START, "extract")
    .edge("extract", "classify")
    .branch("classify", route_by_urgency, {"urgent": "escalate", "normal": "reply"})
    .edge("escalate", "finalize")
    .edge("reply", "finalize")
)
