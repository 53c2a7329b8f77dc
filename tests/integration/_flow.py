"""The one-node flow both integration tests run: a headline classifier with an enum output."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from microprompts import Example, Flow, MicroPrompt

LABELS = ("sports", "business", "world", "tech")


class Topic(BaseModel):
    label: Literal["sports", "business", "world", "tech"]


def topic_flow() -> Flow:
    node = MicroPrompt(
        "topic",
        task="Give the topic of the news headline.",
        inputs={"headline": "A news headline."},
        output=Topic,
        examples=[Example(inputs={"headline": "Lakers win the final in overtime"}, output={"label": "sports"})],
        max_tokens=24,
    )
    return Flow("topic").then(node)


ROWS = [
    {"inputs": {"headline": "Stocks fall as oil prices jump"}, "output": {"label": "business"}},
    {"inputs": {"headline": "New phone chip doubles battery life"}, "output": {"label": "tech"}},
]


# More rows for the free-text (lines) reply, whose answers on SmolLM2 vary more from row to row.
LINES_ROWS = ROWS + [
    {"inputs": {"headline": headline}, "output": {"label": label}}
    for headline, label in [
        ("Striker scores twice in cup final", "sports"),
        ("Leaders meet for peace talks in Geneva", "world"),
        ("Bank raises interest rates again", "business"),
        ("App update brings faster search", "tech"),
    ]
]


def label_match(example, prediction) -> float:
    return float(prediction.get("label") == example["output"]["label"])
