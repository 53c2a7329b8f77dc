"""The multi-node HotpotQA flow: pick the facts that matter from the question's 10 paragraphs, then answer.

Two micro-prompts in a chain, each one small job: ``select_facts`` reads the question and the paragraphs and
writes ``facts`` (sentences copied from the paragraphs); ``answer`` reads the question and the facts (never the
paragraphs) and writes a short ``answer``. Scored end to end on the answer (F1; exact match reported too).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from microprompts import Flow, MicroPrompt


class Facts(BaseModel):
    facts: list[str] = Field(description="Sentences copied from the paragraphs that answer the question.")


class Answer(BaseModel):
    answer: str = Field(description="A short answer: a name, a date, a number, yes or no, a few words.")


def hotpot_flow(select_instruction: str, answer_instruction: str) -> Flow:
    select = MicroPrompt(
        "select_facts",
        task=select_instruction,
        inputs={
            "question": "A question that needs facts from two of the paragraphs.",
            "paragraphs": "Ten numbered paragraphs, each '[n] Title: text'.",
        },
        output=Facts,
        max_tokens=384,
    )
    answer = MicroPrompt(
        "answer",
        task=answer_instruction,
        inputs={"question": "The question.", "facts": "The facts picked from the paragraphs."},
        output=Answer,
        max_tokens=64,
    )
    return Flow("hotpot").then(select).then(answer)
