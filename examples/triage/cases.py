"""A seeded, procedural generator of support tickets whose triage labels follow from rules.

A ticket is a greeting, an issue about a product (from a category's templates), an optional sentence on
how much it matters, and a sign-off. The labels:

- ``category``: the category of the issue template (billing, technical, account, shipping).
- ``urgency``: ``urgent`` when the ticket carries an urgency cue (blocked work, money lost, a deadline
  today) or the issue is a security incident (someone else in the account); otherwise ``normal``.
- ``team``: for urgent tickets, the category's team (billing → billing, technical → engineering,
  account → accounts, shipping → logistics); ``frontline`` for normal ones (they get a reply).
- ``route``: ``escalate`` for urgent tickets, ``reply`` for normal ones.

Write a dataset: ``python -m examples.triage.cases --n 60 --seed 0 --out triage.jsonl``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from examples._jsonl import generator_main

CATEGORIES = ("billing", "technical", "account", "shipping")
TEAMS = {"billing": "billing", "technical": "engineering", "account": "accounts", "shipping": "logistics"}
PRODUCTS = ("Aurora Router", "Nimbus Backup", "Pulse Watch", "Vista Projector", "Orbit Phone", "Echo Speaker")

ISSUES: dict[str, tuple[str, ...]] = {
    "billing": (
        "I was charged twice for my {product} subscription this month.",
        "The invoice for my {product} shows the wrong amount.",
        "I cancelled {product} last month but you still billed my card.",
        "I returned the {product} three weeks ago and still have no refund.",
    ),
    "technical": (
        "My {product} keeps restarting every few minutes.",
        "The {product} app crashes as soon as I open it.",
        "My {product} shows error code E{code} and will not sync.",
        "Since the last update my {product} will not connect to wifi.",
    ),
    "account": (
        "I cannot reset the password for my {product} account.",
        "I want to change the email address on my {product} account.",
        "My {product} account is locked after too many login attempts.",
        "Please merge my two {product} accounts into one.",
    ),
    "shipping": (
        "My {product} order has not arrived and the tracking has not moved in a week.",
        "I received the wrong colour of {product}.",
        "The {product} arrived with a cracked case.",
        "I need to change the delivery address for my {product} order.",
    ),
}
SECURITY_ISSUES = (
    "Someone logged into my {product} account from another country and changed my password.",
    "I got a login alert for my {product} account that was not me, and my saved cards are in there.",
)
URGENT_CUES = (
    "Our whole office is offline because of this.",
    "This is blocking my work completely and I need it fixed today.",
    "I travel tomorrow morning and need this sorted right now.",
    "This is costing my business money every hour.",
    "Please treat this as an emergency.",
)
CALM_CUES = (
    "No rush, whenever you get a chance.",
    "It is not urgent, just letting you know.",
    "Thanks in advance for looking into it.",
    "",
)
GREETINGS = ("Hi,", "Hello support,", "Hey there,", "Good morning,", "")
SIGN_OFFS = ("Thanks, {name}", "Best regards, {name}", "- {name}", "{name}", "")
NAMES = ("Ana", "Ben", "Chloe", "Dmitri", "Eva", "Farid", "Grace", "Hiro", "Ines", "Jonas")


@dataclass(frozen=True)
class Ticket:
    """One generated ticket with the facts its labels follow from."""

    id: str
    text: str
    product: str
    category: str
    security: bool
    urgent_cue: bool

    @property
    def urgency(self) -> str:
        """``urgent`` for an urgency cue or a security incident."""
        return "urgent" if self.urgent_cue or self.security else "normal"

    @property
    def team(self) -> str:
        """The category's team when urgent, else ``frontline``."""
        return TEAMS[self.category] if self.urgency == "urgent" else "frontline"

    @property
    def route(self) -> str:
        """``escalate`` when urgent, else ``reply``."""
        return "escalate" if self.urgency == "urgent" else "reply"

    def row(self) -> dict[str, Any]:
        """The dataset row: ``{"id", "inputs": {"ticket"}, "output": {category, urgency, team, route}}``."""
        return {
            "id": self.id,
            "inputs": {"ticket": self.text},
            "output": {"category": self.category, "urgency": self.urgency, "team": self.team, "route": self.route},
        }


def _ticket(rng: random.Random, ident: str) -> Ticket:
    product = rng.choice(PRODUCTS)
    category = rng.choice(CATEGORIES)
    security = category == "account" and rng.random() < 0.35
    template = rng.choice(SECURITY_ISSUES if security else ISSUES[category])
    urgent_cue = rng.random() < 0.4
    cue = rng.choice(URGENT_CUES) if urgent_cue else rng.choice(CALM_CUES)
    name = rng.choice(NAMES)
    body = " ".join(p for p in (template.format(product=product, code=rng.randint(100, 999)), cue) if p)
    parts = (rng.choice(GREETINGS), body, rng.choice(SIGN_OFFS).format(name=name))
    text = "\n".join(p for p in parts if p)
    return Ticket(id=ident, text=text, product=product, category=category, security=security, urgent_cue=urgent_cue)


def generate_tickets(n: int, seed: int = 0) -> list[Ticket]:
    """``n`` tickets, the same for the same seed."""
    rng = random.Random(seed)
    return [_ticket(rng, f"triage-{seed}-{i}") for i in range(n)]


def generate(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` dataset rows, the same for the same seed."""
    return [t.row() for t in generate_tickets(n, seed)]


def main(argv: list[str] | None = None) -> None:
    """``python -m examples.triage.cases --n 60 --seed 0 --out FILE.jsonl``."""
    generator_main(generate, "support tickets with triage labels", argv)


if __name__ == "__main__":
    main()
