"""Examples chosen per row (`params.nearest_examples`): the nearest by input similarity, the closest last, rendered
into that row's system prompt only; off by default, where every row shares one system prompt."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from microprompts import Example, Flow, MicroPrompt
from microprompts.nodes.nearest import nearest
from microprompts.nodes.render import render_messages


class Seat(BaseModel):
    seat: str


EXAMPLES = [
    Example(inputs={"wish": "a window seat up front", "free": ["1A", "9C"]}, output={"seat": "1A"}),
    Example(inputs={"wish": "an aisle seat in the back", "free": ["2C", "30D"]}, output={"seat": "30D"}),
    Example(inputs={"wish": "the middle seat please", "free": ["5B", "7A"]}, output={"seat": "5B"}),
    Example(inputs={"wish": "a window seat in the back", "free": ["2A", "31F"]}, output={"seat": "31F"}),
]


def node(**params: object) -> MicroPrompt:
    return MicroPrompt(
        "pick",
        task="Pick the seat that fits the wish.",
        inputs={"wish": "What the traveller wants.", "free": "Free seats."},
        output=Seat,
        examples=EXAMPLES,
    ).with_params(**params)


def test_nearest_gives_the_most_alike_examples_with_the_closest_last() -> None:
    row = {"wish": "window seat near the back", "free": ["3A", "29F"]}
    chosen = nearest(EXAMPLES, row, 2)
    assert [e.output["seat"] for e in chosen] == ["1A", "31F"]  # both windows; the back one is the closest, last
    assert nearest(EXAMPLES, row, 0) == ()
    assert len(nearest(EXAMPLES, row, 10)) == 4
    # a field the row lacks counts as unlike, not as an error
    assert [e.output["seat"] for e in nearest(EXAMPLES, {"wish": "the middle seat"}, 1)] == ["5B"]


def test_each_row_is_shown_its_own_nearest_examples_when_the_parameter_is_on() -> None:
    mp = node(nearest_examples=True, n_examples=1)
    back = render_messages(mp, {"wish": "an aisle seat at the back", "free": ["4C"]})[0].content
    middle = render_messages(mp, {"wish": "a middle seat", "free": ["4B"]})[0].content
    assert "30D" in back and "5B" not in back
    assert "5B" in middle and "30D" not in middle
    assert mp.shown_examples() == tuple(EXAMPLES[:1])  # with no row (a report, the artifact view): the first ones


def test_off_by_default_every_row_shares_the_first_examples_and_the_parameter_survives_the_artifact(
    tmp_path: Path,
) -> None:
    mp = node(n_examples=1)
    first = render_messages(mp, {"wish": "an aisle seat at the back", "free": ["4C"]})[0].content
    second = render_messages(mp, {"wish": "a middle seat", "free": ["4B"]})[0].content
    assert first == second and "1A" in first and "30D" not in first
    flow = Flow("seats").then(node(nearest_examples=True, n_examples=2))
    flow.save(tmp_path / "seats.json")
    loaded = Flow.load(tmp_path / "seats.json")
    assert loaded.nodes["pick"].params.nearest_examples and loaded.nodes["pick"].params.n_examples == 2
