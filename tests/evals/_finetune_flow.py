"""A two-step flow and a scripted model for the fine-tuning export tests."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage
from pydantic import BaseModel

from microprompts import Flow, MicroPrompt
from microprompts.testing import ScriptedChatModel


class Topic(BaseModel):
    topic: str


class Answer(BaseModel):
    answer: str


topic = MicroPrompt("topic", task="Name the question's topic.", inputs={"question": "a question"}, output=Topic)
answer = MicroPrompt(
    "answer", task="Answer the question.", inputs={"question": "a question", "topic": "its topic"}, output=Answer
)
FLOW = Flow("qa2").then(topic).then(answer)
ANSWERS = {"2+2?": "4", "3+3?": "6", "capital of France?": "Lyon"}


def model() -> ScriptedChatModel:
    """Topics `math`/`geo`, and the answers in ANSWERS (the France one wrong)."""

    def reply(messages: list[BaseMessage]) -> Any:
        user = str(messages[-1].content)
        question = next(q for q in ANSWERS if q in user)
        if "Name the question's topic." in str(messages[0].content):
            return {"topic": "geo" if "France" in question else "math"}
        return {"answer": ANSWERS[question]}

    return ScriptedChatModel(replies=reply)


def rows() -> list[dict[str, Any]]:
    gold = {"2+2?": "4", "3+3?": "6", "capital of France?": "Paris"}
    return [{"inputs": {"question": q}, "output": {"answer": a}} for q, a in gold.items()]
