"""Scripted chat models that answer the examples' micro-prompts from the gold labels of their datasets.

Each oracle reads the rendered user turn back into inputs (``parse_user``), finds the row, and replies with
the node's part of the gold answer; with ``wrong=True`` it gives a fixed wrong answer instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.messages import BaseMessage

from examples.triage.cases import Ticket
from microprompts.testing import ScriptedChatModel, parse_user


def _user(messages: list[BaseMessage]) -> str:
    return next(str(m.content) for m in messages if m.type == "human")


def _system(messages: list[BaseMessage]) -> str:
    return next(str(m.content) for m in messages if m.type == "system")


def seats_oracle(rows: Sequence[dict[str, Any]], wrong: bool = False) -> ScriptedChatModel:
    """Answers the seat prompt with the gold seats (or the last available seat, repeated as a wrong answer)."""
    gold = {r["inputs"]["preferences"]: r["output"]["recommended_seats"] for r in rows}

    def reply(messages: list[BaseMessage]) -> dict[str, Any]:
        inputs = parse_user(_user(messages))
        if wrong:
            return {"recommended_seats": [inputs["available_seats"][-1]]}
        return {"recommended_seats": gold[inputs["preferences"]]}

    return ScriptedChatModel(replies=reply, name="seats-oracle-wrong" if wrong else "seats-oracle")


def triage_oracle(tickets: Sequence[Ticket], urgency: Callable[[Ticket], str] | None = None) -> ScriptedChatModel:
    """Answers each triage node from the ticket's facts; `urgency` may override the gold urgency."""
    by_text = {t.text: t for t in tickets}
    by_issue = {f"issue-{i}": t for i, t in enumerate(tickets)}
    urgency_of = urgency or (lambda t: t.urgency)

    def reply(messages: list[BaseMessage]) -> dict[str, Any]:
        system, inputs = _system(messages), parse_user(_user(messages))
        if "which product" in system:
            ticket = by_text[inputs["ticket"]]
            index = tickets.index(ticket)
            return {"product": ticket.product, "issue": f"issue-{index}"}
        ticket = by_issue[inputs["issue"]]
        if "Classify" in system:
            return {"category": ticket.category, "urgency": urgency_of(ticket)}
        if "escalation note" in system:
            from examples.triage.cases import TEAMS

            return {"team": TEAMS[ticket.category], "note": f"{ticket.product}: please look at this."}
        return {"reply": "Thanks for writing; we are on it."}

    return ScriptedChatModel(replies=reply, name="triage-oracle")


def bbh_oracle(rows: Sequence[Any]) -> ScriptedChatModel:
    """Answers navigate questions with the gold answer."""
    gold = {r.inputs["question"]: r.output["answer"] for r in rows}

    def reply(messages: list[BaseMessage]) -> str:  # the question spans lines such as "Options:": no parse_user
        return json.dumps({"answer": gold[_user(messages).removeprefix("question: ")]})

    return ScriptedChatModel(replies=reply, name="bbh-oracle")


def intake_oracle(rows: Sequence[dict[str, Any]]) -> ScriptedChatModel:
    """Answers the intake prompts from the gold labels once the prompt shows examples; before that, as a weak model
    does, the catalog's first product and `unknown`."""
    gold = {r["inputs"]["ticket"]: r["output"] for r in rows}

    def reply(messages: list[BaseMessage]) -> dict[str, Any]:
        system, ticket = _system(messages), parse_user(_user(messages))["ticket"]
        taught = "example" in system.lower()
        if "which product" in system:
            return {"product": gold[ticket]["product"] if taught else "Aurora Router"}
        return {"customer": gold[ticket]["customer"] if taught else "unknown"}

    return ScriptedChatModel(replies=reply, name="intake-oracle")
