"""The seat recommendation flow: one plain micro-prompt, the baseline the optimizer starts from.

Run it: ``microprompts run examples/seats/flow.py:flow --input '{"preferences": "window in economy",
"available_seats": ["economy_14A_window", "economy_14C_aisle"]}'``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from microprompts import Flow, MicroPrompt


class Seats(BaseModel):
    """The recommendation: seat ids taken from the available list, best first."""

    recommended_seats: list[str] = Field(
        min_length=1, max_length=3, description="Seat ids from available_seats, best first."
    )


recommend = MicroPrompt(
    "recommend",
    task="Propose the top 3 seats for the traveler, given their seating preferences and the available seats.",
    inputs={
        "preferences": "The traveler's seating preferences, in their words.",
        "available_seats": "Seats, each [class]_[seat]_[aisle|middle|window], e.g. economy_14C_aisle.",
    },
    output=Seats,
)

flow = Flow("seats").then(recommend)
