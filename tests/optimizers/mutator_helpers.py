"""Importable pieces for the content and graph mutator tests: a 3-node pipeline, a branchy flow, a task model
that answers any node of them from its rendered prompt, a spy caller, and a context factory.

Module level, so artifacts can reference the router by import path.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Any, Literal

from langchain_core.messages import BaseMessage
from pydantic import BaseModel, Field

from microprompts.evals import EvalResult, evaluate
from microprompts.evals.evaluate import row_parts
from microprompts.flows import Flow
from microprompts.models import Completion, ModelCaller
from microprompts.nodes import FunctionNode, MicroPrompt
from microprompts.optimizers.mutators.base import MutationContext
from microprompts.testing import ScriptedChatModel, parse_user

TOPICS = {"football": "sports", "election": "politics", "chip": "tech"}


class Topic(BaseModel):
    topic: str = Field(description="The one word the text is about.")


class Label(BaseModel):
    label: Literal["sports", "politics", "tech"] = Field(description="The newspaper section.")


class Answer(BaseModel):
    reply: str


class Gloss(BaseModel):
    gloss: str


EXTRACT = MicroPrompt(
    "extract", task="Extract the topic word of the text.", inputs={"text": "A news text."}, output=Topic
)
CLASSIFY = MicroPrompt(
    "classify",
    task="Classify the topic into a newspaper section, using the house rules.",
    guidelines=["Sports covers games and athletes.", "Politics covers elections."],
    inputs={"topic": "The topic word."},
    output=Label,
)
REPLY = MicroPrompt(
    "reply", task="Write the headline tag for the section.", inputs={"label": "The section."}, output=Answer
)


def pipeline() -> Flow:
    """extract -> classify -> reply: each node reads only what the previous one wrote."""
    return Flow("news").then(EXTRACT).then(CLASSIFY).then(REPLY)


def route_label(state: dict[str, Any]) -> str:
    """politics goes to the desk (a function node); everything else gets a micro-prompt reply."""
    return "desk" if state["label"] == "politics" else "write"


def desk(state: dict[str, Any]) -> dict[str, Any]:
    return {"reply": f"Desk: {state['label']}"}


def branchy() -> Flow:
    """extract -> classify -> (write: reply | desk: a function node)."""
    return (
        Flow("news_branchy")
        .add(EXTRACT)
        .add(CLASSIFY)
        .add(REPLY)
        .add(FunctionNode("desk", desk, reads=["label"], writes=["reply"]))
        .edge("__start__", "extract")
        .edge("extract", "classify")
        .branch("classify", route_label, {"write": "reply", "desk": "desk"})
    )


def rows(keys: Sequence[str] = ("reply",)) -> list[dict[str, Any]]:
    """Three rows, one per topic; expected outputs limited to `keys` (of topic, label, reply)."""
    out = []
    for word, label in TOPICS.items():
        full = {"topic": word, "label": label, "reply": f"Section: {label}"}
        out.append({"inputs": {"text": f"{word} news today"}, "output": {k: full[k] for k in keys}})
    return out


def reply_metric(example: Any, prediction: dict[str, Any]) -> float:
    """1 when the reply names the text's true section."""
    return float(prediction.get("reply") == f"Section: {_label(example)}")


def _label(example: Any) -> str:
    return TOPICS[row_parts(example)[0]["text"].split()[0]]


_FIELD = re.compile(r"^- (\w+) \(", re.MULTILINE)


def task_model(classify: Literal["right", "wrong", "broken"] = "right") -> ScriptedChatModel:
    """Answers any node from the output fields its prompt asks for; `classify` sets how the label is found:
    right, always 'sports' (wrong for two of three rows), or not JSON at all (the node errors)."""

    def respond(messages: list[BaseMessage]) -> dict[str, Any] | str:
        system = str(messages[0].content)
        fields = _FIELD.findall(system.split("these fields:", 1)[-1])
        inputs = parse_user(str(messages[1].content))
        out: dict[str, Any] = {}
        for name in fields:
            if name == "topic":
                out[name] = str(inputs["text"]).split()[0]
            elif name == "label":
                if classify == "broken":
                    return "I think it is about sports."
                out[name] = TOPICS.get(str(inputs.get("topic")), "sports") if classify == "right" else "sports"
            elif name == "reply":
                out[name] = f"Section: {inputs['label']}"
            else:
                out[name] = "notes: look at the topic word"
        return out

    return ScriptedChatModel(replies=respond)


def run(flow: Flow, data: list[dict[str, Any]], classify: Literal["right", "wrong", "broken"] = "right") -> EvalResult:
    """Evaluate `flow` end to end on `data` with the task model (no call cache)."""
    return evaluate(flow, data, reply_metric, model=task_model(classify), caller=ModelCaller(cache=None), concurrency=1)


class SpyCaller(ModelCaller):
    """A cache-less caller that records every request (messages and keyword arguments, schema included)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cache=None, max_attempts=1, **kwargs)
        self.requests: list[tuple[list[BaseMessage], dict[str, Any]]] = []

    def complete(self, model: Any, messages: list[BaseMessage], **kwargs: Any) -> Completion:
        self.requests.append((list(messages), dict(kwargs)))
        return super().complete(model, messages, **kwargs)

    def sizes(self) -> list[int]:
        """Characters sent per request."""
        return [sum(len(str(m.content)) for m in msgs) for msgs, _ in self.requests]


def make_ctx(
    optimizer: Any = None,
    *,
    evaluation: EvalResult | None = None,
    train: Sequence[Any] | None = None,
    history: Sequence[tuple[str, str, float]] = (),
    frozen: Sequence[str] = (),
    max_prompt_chars: int = 6000,
    caller: ModelCaller | None = None,
    seed: int = 0,
) -> MutationContext:
    """A mutation context with a spy caller when an optimizer model is given."""
    return MutationContext(
        train=list(train if train is not None else rows()),
        metric=reply_metric,
        rng=random.Random(seed),
        evaluation=evaluation,
        optimizer_model=optimizer,
        caller=caller or (SpyCaller() if optimizer is not None else None),
        history=list(history),
        frozen=tuple(frozen),
        max_prompt_chars=max_prompt_chars,
    )
