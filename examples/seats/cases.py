"""A seeded, procedural generator of seat recommendation cases whose correct answer follows from rules.

The cabin: business rows 1-3 and premium rows 5-8 have seats A and F (window) and C and D (aisle);
economy rows 10-32 (no row 13) have A and F (window), B and E (middle), C and D (aisle). A seat id is
``[class]_[row][letter]_[position]``, e.g. ``economy_14C_aisle``.

A traveler states a class (economy, premium, business, or none), a position (window, aisle, middle, or
none) and optionally where in the cabin: the front (the default) or the back. The correct answer:

1. Order every available seat front first (row ascending, then letter); for "the back", row descending.
2. Take seats from these tiers in turn, each in that order, until there are 3:
   (a) the preferred class and the preferred position; (b) the preferred class, any position;
   (c) the preferred position, any class; (d) any seat. An unstated preference matches every seat.

Write a dataset: ``python -m examples.seats.cases --n 60 --seed 0 --out seats.jsonl``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal

from examples._jsonl import generator_main

Cabin = Literal["economy", "premium", "business"]
Position = Literal["window", "aisle", "middle"]
End = Literal["front", "back"]

CLASSES: tuple[Cabin, ...] = ("economy", "premium", "business")
ROWS: dict[str, tuple[int, ...]] = {
    "business": (1, 2, 3),
    "premium": (5, 6, 7, 8),
    "economy": tuple(r for r in range(10, 33) if r != 13),
}
LETTERS: dict[str, dict[str, str]] = {
    "business": {"A": "window", "C": "aisle", "D": "aisle", "F": "window"},
    "premium": {"A": "window", "C": "aisle", "D": "aisle", "F": "window"},
    "economy": {"A": "window", "B": "middle", "C": "aisle", "D": "aisle", "E": "middle", "F": "window"},
}
TOP = 3

_CLASS_WORDS: dict[str, tuple[str, ...]] = {
    "economy": ("economy", "economy class", "coach", "the main cabin"),
    "premium": ("premium economy", "premium", "the premium cabin"),
    "business": ("business", "business class", "the business cabin"),
}
_CLASS_SENTENCES = ("I'm flying in {cabin}.", "My ticket is in {cabin}.", "Booked in {cabin}.", "I'm in {cabin}.")
_NO_CLASS = ("Any class is fine.", "I don't care which class.", "The cabin class doesn't matter to me.")
_POSITION_WORDS: dict[str, tuple[str, ...]] = {
    "window": ("a window seat", "a seat by the window", "the window"),
    "aisle": ("an aisle seat", "a seat on the aisle", "the aisle"),
    "middle": ("a middle seat", "the middle seat", "a seat in the middle"),
}
_POSITION_SENTENCES = (
    "I'd like {position}.",
    "I always take {position}.",
    "Could you find me {position}?",
    "{Position}, please.",
    "Please give me {position}.",
)
_NO_POSITION = ("Any seat is fine.", "I don't mind where I sit.", "No preference between window, aisle or middle.")
_END_SENTENCES: dict[str, tuple[str, ...]] = {
    "front": (
        "I'd like to be near the front.",
        "Somewhere up front would be great.",
        "As close to the front as possible.",
    ),
    "back": ("I'd rather sit near the back.", "Towards the rear of the plane, please.", "As far back as possible."),
}


@dataclass(frozen=True)
class Preferences:
    """What the traveler wants; None means no preference."""

    cabin: Cabin | None
    position: Position | None
    end: End | None  # None: not said (the front is the default)


@dataclass(frozen=True)
class Case:
    """One generated case: the preferences (structured and in words), the available seats, the answer."""

    id: str
    prefs: Preferences
    preferences: str
    available_seats: tuple[str, ...]
    recommended_seats: tuple[str, ...]

    def row(self) -> dict[str, Any]:
        """The dataset row: ``{"id", "inputs", "output"}``."""
        return {
            "id": self.id,
            "inputs": {"preferences": self.preferences, "available_seats": list(self.available_seats)},
            "output": {"recommended_seats": list(self.recommended_seats)},
        }


def seat_id(cabin: str, row: int, letter: str) -> str:
    """``economy_14C_aisle`` for economy, row 14, seat C."""
    return f"{cabin}_{row}{letter}_{LETTERS[cabin][letter]}"


def parse_seat(seat: str) -> tuple[str, int, str, str]:
    """(class, row, letter, position) of a seat id."""
    cabin, place, position = seat.split("_")
    return cabin, int(place[:-1]), place[-1], position


def all_seats() -> list[str]:
    """Every seat in the cabin, front to back."""
    return [seat_id(c, r, letter) for c in reversed(CLASSES) for r in ROWS[c] for letter in LETTERS[c]]


def order_key(seat: str, end: End | None) -> tuple[int, str]:
    """Sort key: row ascending then letter; row descending for the back."""
    _, row, letter, _ = parse_seat(seat)
    return (-row if end == "back" else row, letter)


def recommend(prefs: Preferences, available: list[str] | tuple[str, ...], top: int = TOP) -> list[str]:
    """The correct answer: the rules of the module docstring applied to the available seats."""
    ordered = sorted(available, key=lambda s: order_key(s, prefs.end))

    def fits_class(seat: str) -> bool:
        return prefs.cabin is None or parse_seat(seat)[0] == prefs.cabin

    def fits_position(seat: str) -> bool:
        return prefs.position is None or parse_seat(seat)[3] == prefs.position

    tiers = (
        lambda s: fits_class(s) and fits_position(s),
        fits_class,
        fits_position,
        lambda s: True,
    )
    chosen: list[str] = []
    for tier in tiers:
        for seat in ordered:
            if len(chosen) == top:
                return chosen
            if tier(seat) and seat not in chosen:
                chosen.append(seat)
    return chosen


def describe(prefs: Preferences, rng: random.Random) -> str:
    """The preferences in varied natural language."""
    if prefs.cabin:
        cabin = rng.choice(_CLASS_SENTENCES).format(cabin=rng.choice(_CLASS_WORDS[prefs.cabin]))
    else:
        cabin = rng.choice(_NO_CLASS)
    if prefs.position:
        words = rng.choice(_POSITION_WORDS[prefs.position])
        position = rng.choice(_POSITION_SENTENCES).format(position=words, Position=words[0].upper() + words[1:])
    else:
        position = rng.choice(_NO_POSITION)
    if prefs.end:
        position += " " + rng.choice(_END_SENTENCES[prefs.end])
    parts = [cabin, position]
    rng.shuffle(parts)
    return " ".join(parts)


def _preferences(rng: random.Random) -> Preferences:
    cabin: Cabin | None = rng.choices([*CLASSES, None], weights=[5, 2, 2, 1])[0]
    positions: list[Position | None] = ["window", "aisle", None]
    if cabin in ("economy", None):
        positions.append("middle")
    position = rng.choice(positions)
    end: End | None = rng.choices(["front", "back", None], weights=[2, 2, 3])[0]
    return Preferences(cabin=cabin, position=position, end=end)


def _available(prefs: Preferences, rng: random.Random) -> list[str]:
    """8 to 14 free seats; sometimes few in the preferred class, so the fallback rules matter."""
    seats = all_seats()
    n = rng.randint(8, 14)
    if prefs.cabin is None:
        picked = rng.sample(seats, n)
    else:
        own = [s for s in seats if parse_seat(s)[0] == prefs.cabin]
        other = [s for s in seats if parse_seat(s)[0] != prefs.cabin]
        k = min(len(own), rng.choice([1, 2, 3, 4, 5, 6, 8]))
        picked = rng.sample(own, k) + rng.sample(other, n - k)
    return sorted(picked, key=lambda s: order_key(s, "front"))


def generate_cases(n: int, seed: int = 0) -> list[Case]:
    """``n`` cases, the same for the same seed."""
    rng = random.Random(seed)
    cases = []
    for i in range(n):
        prefs = _preferences(rng)
        available = _available(prefs, rng)
        cases.append(
            Case(
                id=f"seats-{seed}-{i}",
                prefs=prefs,
                preferences=describe(prefs, rng),
                available_seats=tuple(available),
                recommended_seats=tuple(recommend(prefs, available)),
            )
        )
    return cases


def generate(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` dataset rows ``{"id", "inputs": {"preferences", "available_seats"}, "output":
    {"recommended_seats"}}``, the same for the same seed."""
    return [case.row() for case in generate_cases(n, seed)]


def main(argv: list[str] | None = None) -> None:
    """``python -m examples.seats.cases --n 60 --seed 0 --out FILE.jsonl``."""
    generator_main(generate, "seat recommendation cases", argv)


if __name__ == "__main__":
    main()
