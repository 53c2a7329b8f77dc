"""The intake flow: two single-purpose micro-prompts feed a lookup, as a support desk opens a case.

``identify`` names the product the ticket is about, from the catalog; ``customer`` reads who signed it;
``assign`` (plain Python) looks the product's owning team up in a table. The two micro-prompts run in parallel.

    START -> identify -> assign -> END
    START -> customer ----------> END

Written as a first draft would be: a task and described inputs, no examples, no constraints. On the embedded
135M model it answers the catalog's first product for most tickets: the room the optimizer has.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START
from pydantic import BaseModel, Field
from typing_extensions import TypedDict  # pydantic (and LangGraph's input schema) need it on Python < 3.12

from examples.intake.cases import TEAMS
from microprompts import Flow, FunctionNode, MicroPrompt


class IntakeState(TypedDict, total=False):
    """Everything the flow reads and writes."""

    ticket: str
    catalog: list[str]
    product: str
    customer: str
    team: str


class Product(BaseModel):
    """Which product the ticket is about."""

    product: str = Field(description="The product's name, as the catalog writes it.")


class Customer(BaseModel):
    """Who wrote the ticket."""

    customer: str = Field(description="The first name the ticket is signed with, or unknown.")


identify = MicroPrompt(
    "identify",
    task="Say which product the support ticket is about.",
    inputs={"ticket": "The customer's message.", "catalog": (list[str], "The products we sell.")},
    output=Product,
)

customer = MicroPrompt(
    "customer",
    task="Say who wrote the support ticket.",
    inputs={"ticket": "The customer's message."},
    output=Customer,
)


def assign_team(state: dict[str, Any]) -> dict[str, Any]:
    """The team that owns the product (``triage`` when the product is not in the table)."""
    return {"team": TEAMS.get(str(state.get("product", "")), "triage")}


assign = FunctionNode("assign", assign_team, reads=("product",), writes=("team",))

flow = (
    Flow("intake", state=IntakeState)
    .add(identify)
    .add(customer)
    .add(assign)
    .edge(START, "identify")
    .edge(START, "customer")
    .edge("identify", "assign")
    .edge("assign", END)
    .edge("customer", END)
)
