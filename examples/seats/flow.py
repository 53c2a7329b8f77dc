"""The seat recommendation flow: one plain micro-prompt, the baseline the optimizer starts from.

Run it: ``microprompts run examples/seats/flow.py:flow --input '{"preferences": "window in economy",
"available_seats": ["economy_14A_window", "economy_14C_aisle"]}'``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from microprompts import Flow, MicroPrompt

SEAT_ID = r"^(economy|premium|business)_[0-9]{1,2}[A-F]_(aisle|middle|window)$"
SeatId = Annotated[str, StringConstraints(pattern=SEAT_ID)]


class Seats(BaseModel):
    """The recommendation: up to 3 well-formed seat ids, best first.

    The schema (pattern, at most 3 items) becomes llama.cpp's grammar, so a small model cannot run on into an
    endless list or an endless id; whether the ids are really available is the metric's business.
    """

    recommended_seats: list[SeatId] = Field(
        min_length=1, max_length=3, description="Seat ids from available_seats, best first."
    )


recommend = MicroPrompt(
    "recommend",
    task="Propose the top 3 seats for the traveler, given their seating preferences and the available seats.",
    inputs={
        "preferences": "The traveler's seating preferences, in their words.",
        "available_seats": (list[str], "Seats, each [class]_[seat]_[aisle|middle|window], e.g. economy_14C_aisle."),
    },
    output=Seats,
)

flow = Flow("seats").then(recommend)
