"""The optimizer's own prompts as micro-prompts: a typed output (sent as a JSON-schema grammar, so a local model is
constrained to it), asked through the optimizer's caller (cached and budgeted like any node), and a reply that does
not validate, even after the node's one repair turn, is rejected: nothing is built from it.

`ask_meta` runs one such micro-prompt; `BudgetExceeded` is not caught (the search must see it to stop).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel, Field

from microprompts.models import BudgetExceeded
from microprompts.nodes import MicroPrompt
from microprompts.nodes.runtime import Runtime
from microprompts.optimizers.mutators._ask import message_chars
from microprompts.optimizers.mutators.base import MutationContext

__all__ = ["REFLECT", "Proposal", "Reflection", "ask_meta"]

log = logging.getLogger(__name__)

MAX_PROPOSALS = 4


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


def ask_meta(ctx: MutationContext, prompt: MicroPrompt, inputs: dict[str, Any]) -> dict[str, Any] | None:
    """Run an optimizer micro-prompt on the optimizer model through `ctx.caller`: its validated output, or None when
    there is no optimizer model, the request exceeds `ctx.max_prompt_chars` (never sent), the call fails, or the
    reply does not validate against the prompt's output type."""
    if ctx.caller is None or ctx.optimizer_model is None:
        return None
    size = message_chars(prompt.render(inputs))
    if size > ctx.max_prompt_chars:
        log.debug("not sent: request of %d chars exceeds max_prompt_chars=%d", size, ctx.max_prompt_chars)
        return None
    try:
        return prompt.run(inputs, Runtime(model=ctx.optimizer_model, caller=ctx.caller))
    except BudgetExceeded:
        raise
    except Exception as exc:  # noqa: BLE001 - a failed or invalid reply is a rejection, never adopted
        log.debug("rejected: %s reply unusable (%s)", prompt.name, exc)
        return None
