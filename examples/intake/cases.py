"""A seeded generator of support tickets for the intake example, built on the triage example's tickets.

Each row's inputs are the ticket and the product catalog (the products we sell, always in the same order); its
gold output is the product the ticket is about, the first name it is signed with (``unknown`` when unsigned)
and the team that owns that product (a fixed table, ``TEAMS``).

Write a dataset: ``python -m examples.intake.cases --n 60 --seed 0 --out intake.jsonl``.
"""

from __future__ import annotations

from typing import Any

from examples._jsonl import generator_main
from examples.triage.cases import NAMES, PRODUCTS, generate_tickets

# Two products no ticket mentions: the catalog offers more than the tickets ask about, as a real one does.
CATALOG = (*PRODUCTS, "Lumen Lamp", "Terra Drone")
TEAMS = {
    "Aurora Router": "networking",
    "Nimbus Backup": "cloud",
    "Pulse Watch": "wearables",
    "Vista Projector": "home-cinema",
    "Orbit Phone": "mobile",
    "Echo Speaker": "audio",
    "Lumen Lamp": "smart-home",
    "Terra Drone": "drones",
}


def signer(text: str) -> str:
    """The first name a ticket is signed with (its last word, when that is a known name), else ``unknown``."""
    words = text.splitlines()[-1].split() if text.strip() else []
    return words[-1] if words and words[-1] in NAMES else "unknown"


def generate(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` dataset rows, the same for the same seed."""
    return [
        {
            "id": f"intake-{seed}-{i}",
            "inputs": {"ticket": t.text, "catalog": list(CATALOG)},
            "output": {"product": t.product, "customer": signer(t.text), "team": TEAMS[t.product]},
        }
        for i, t in enumerate(generate_tickets(n, seed))
    ]


def main(argv: list[str] | None = None) -> None:
    """``python -m examples.intake.cases --n 60 --seed 0 --out FILE.jsonl``."""
    generator_main(generate, "support tickets with intake labels", argv)


if __name__ == "__main__":
    main()
