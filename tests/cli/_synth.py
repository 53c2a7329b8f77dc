"""A flow the synthesize CLI tests name by reference."""

from __future__ import annotations

from pydantic import BaseModel

from microprompts import Flow, MicroPrompt


class Answer(BaseModel):
    """The flow's typed output."""

    answer: str


qa = Flow("qa").then(
    MicroPrompt("answer", task="Answer the trivia question.", inputs={"question": "a trivia question"}, output=Answer)
)
