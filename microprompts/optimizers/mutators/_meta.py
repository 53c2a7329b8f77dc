"""The optimizer's own prompts as micro-prompts: a typed output (sent as a JSON-schema grammar, so a local model is
constrained to it), asked through the optimizer's caller (cached and budgeted like any node), and a reply that does
not validate, even after the node's one repair turn, or that the token limit cut off, is rejected: nothing is built
from it.

`REFLECT` is the reflective proposal's prompt; `meta_prompt` wraps the content operators' written requests
(`_prompts`: paraphrase, compress, induce, OPRO, critique, edit) in one with a typed output (`Instruction`,
`critique_output`). `ask_meta` runs one; `BudgetExceeded` is not caught (the search must see it to stop).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from pydantic import BaseModel, Field, create_model

from microprompts.models import BudgetExceeded, Completion, ModelCaller, ModelCallError, UsageMeter
from microprompts.nodes import MicroPrompt
from microprompts.nodes.runtime import Runtime
from microprompts.optimizers.mutators._prompts import SYSTEM
from microprompts.optimizers.mutators.base import MutationContext

__all__ = [
    "REFLECT",
    "Instruction",
    "Proposal",
    "Reflection",
    "ask_meta",
    "critique_output",
    "meta_prompt",
    "overhead",
]

log = logging.getLogger(__name__)

MAX_PROPOSALS = 4


class Instruction(BaseModel):
    """A content operator's reply: the new text of one section."""

    instruction: str = Field(description="The new text, addressed to the model that runs the step.")


def critique_output(nodes: Sequence[str]) -> type[BaseModel]:
    """The critique's reply: what goes wrong and the fix, and the step to blame, one of `nodes`."""
    node_type: Any = Literal[tuple(nodes)]  # pyright: ignore[reportInvalidTypeArguments] - a runtime Literal
    return create_model(
        "Critique",
        critique=(str, Field(description="What goes wrong, and the fix.")),
        node=(
            node_type,
            Field(description="The name of the step most responsible.", json_schema_extra={"enum": list(nodes)}),
        ),
    )


def meta_prompt(name: str, output: type[BaseModel]) -> MicroPrompt:
    """A micro-prompt that hands the optimizer model one written request (`request`) and takes a typed reply."""
    return MicroPrompt(
        name,
        task=SYSTEM,
        inputs={"request": "What to write, with the texts and examples it needs."},
        output=output,
    )


def overhead(prompt: MicroPrompt) -> int:
    """Characters the prompt's messages take around an empty `request`: what a request's budget must leave for."""
    return _chars(prompt.render({"request": ""}))


def _chars(messages: Sequence[BaseMessage]) -> int:
    return sum(len(str(m.content)) for m in messages)


class Proposal(BaseModel):
    """One proposed text for a section of the step: the section it replaces, and its complete new text."""

    section: Literal["task", "guidelines"] = Field(description="Which part of the step's prompt the text replaces.")
    text: str = Field(description="The complete new text of that part, addressed to the model that runs the step.")


class Reflection(BaseModel):
    """What the reflection writes: a diagnosis of the step's failures, then several new texts for it."""

    diagnosis: str = Field(description="What the step does wrong on these examples, and why.")
    proposals: list[Proposal] = Field(
        description="Different new texts for the step, each fixing the diagnosed mistake as a general rule.",
        min_length=1,
        max_length=MAX_PROPOSALS,
    )


REFLECT = MicroPrompt(
    "reflect",
    task=(
        "You improve one step of a language-model pipeline. Read the step's current prompt and the examples the "
        "pipeline got wrong (the inputs, what this step wrote, what the later steps wrote, the expected output and "
        "the metric's feedback). Diagnose what this step does wrong, then propose several different new texts "
        "for its task or guidelines that would fix it."
    ),
    guidelines=[
        "State each fix as a general rule, not as a list of the examples.",
        "Keep every label, field name and requirement the current text has; write each proposal in full.",
        "Make the proposals differ from one another and from the current text.",
    ],
    inputs={
        "step": "The step: its name, what it reads and what it writes.",
        "current": "The step's current task and guidelines.",
        "failures": "Failing examples, with each step's output and the metric's feedback.",
        "count": "How many proposals to write.",
    },
    output=Reflection,
    temperature=0.7,
    max_tokens=1500,
)


class _Drawn(ModelCaller):
    """The optimizer's caller for one meta-prompt run: each request goes through `inner` with the draw `sample` (so
    two proposals differ, and a rerun with the same seed hits the cache); a reply cut off by the token limit fails."""

    def __init__(self, inner: ModelCaller, sample: int) -> None:
        super().__init__(cache=None, max_attempts=1)
        self.inner, self.sample = inner, sample

    def complete(
        self,
        model: BaseChatModel,
        messages: list[BaseMessage],
        *,
        schema: dict[str, Any] | None = None,
        temperature: float = 0.0,
        max_tokens: int = 256,
        sample: int = 0,
        node: str | None = None,
        meter: UsageMeter | None = None,
    ) -> Completion:
        """The inner caller's completion at this run's draw; raises ModelCallError on a truncated reply."""
        reply = self.inner.complete(
            model,
            messages,
            schema=schema,
            temperature=temperature,
            max_tokens=max_tokens,
            sample=self.sample + sample,
            node=node,
            meter=meter,
        )
        if reply.finish_reason == "length":
            raise ModelCallError("the reply was cut off at the token limit")
        return reply


def ask_meta(
    ctx: MutationContext, prompt: MicroPrompt, inputs: dict[str, Any], sample: int = 0
) -> dict[str, Any] | None:
    """Run an optimizer micro-prompt on the optimizer model through `ctx.caller` at draw `sample`: its validated
    output, or None when there is no optimizer model, the request exceeds `ctx.max_prompt_chars` (never sent), the
    call fails, the reply is truncated, or it does not validate against the prompt's output type."""
    if ctx.caller is None or ctx.optimizer_model is None:
        return None
    size = _chars(prompt.render(inputs))
    if size > ctx.max_prompt_chars:
        log.debug("not sent: request of %d chars exceeds max_prompt_chars=%d", size, ctx.max_prompt_chars)
        return None
    try:
        return prompt.run(inputs, Runtime(model=ctx.optimizer_model, caller=_Drawn(ctx.caller, sample)))
    except BudgetExceeded:
        raise
    except Exception as exc:  # noqa: BLE001 - a failed or invalid reply is a rejection, never adopted
        log.debug("rejected: %s reply unusable (%s)", prompt.name, exc)
        return None
