"""Parameter mutators that need no model: model per node, temperature, max tokens, and k samples with a vote."""

from __future__ import annotations

from typing import Any

from microprompts.flows import Flow
from microprompts.nodes import MicroPrompt
from microprompts.optimizers.candidate import Candidate
from microprompts.optimizers.mutators._moves import MoveMutator, ParamChoice, prompts, swap_node
from microprompts.optimizers.mutators.base import Move, MutationContext

__all__ = ["MaxTokens", "ModelChoice", "Samples", "Temperature", "param_mutators"]

TEMPERATURES = (0.0, 0.3, 0.7, 1.0)
MAX_TOKENS = (64, 128, 256, 512, 1024)
SAMPLES = (1, 3, 5)
VOTE_TEMPERATURE = 0.7  # k samples at temperature 0 would all be the same reply


class ModelChoice(MoveMutator):
    """Run a node on another model from the user's list (`ctx.models`, model specs)."""

    name = "model"
    kind = "parameters"

    def addresses(self, flow: Flow) -> list[str]:
        """Each micro-prompt's model."""
        return [f"{mp.name}.params.model" for mp in prompts(flow)]

    def moves(self, candidate: Candidate, ctx: MutationContext) -> list[Move]:
        """Each other model of `ctx.models`, per micro-prompt."""
        return [
            Move(
                f"{mp.name}.params.model", mp.params.model, spec, swap_node(candidate.flow, mp.with_params(model=spec))
            )
            for mp in prompts(candidate.flow)
            for spec in dict.fromkeys(ctx.models)
            if spec != mp.params.model
        ]


class Temperature(ParamChoice):
    """Change a node's sampling temperature (never to 0 while it votes over k > 1 samples)."""

    name = "temperature"
    kind = "parameters"
    param = "temperature"

    def __init__(self, values: tuple[float, ...] = TEMPERATURES) -> None:
        self.values = values

    def allowed(self, mp: MicroPrompt, value: Any) -> bool:
        """Any value but 0 for a node that votes over k > 1 samples."""
        return not (value == 0 and mp.params.samples > 1)


class MaxTokens(ParamChoice):
    """Change a node's reply length limit (a lower limit saves tokens; too low truncates replies)."""

    name = "max_tokens"
    kind = "parameters"
    param = "max_tokens"

    def __init__(self, values: tuple[int, ...] = MAX_TOKENS) -> None:
        self.values = values


class Samples(MoveMutator):
    """Sample a node k times and take the majority answer (raising the temperature above 0 when k > 1)."""

    name = "samples"
    kind = "parameters"

    def __init__(self, values: tuple[int, ...] = SAMPLES) -> None:
        self.values = values

    def addresses(self, flow: Flow) -> list[str]:
        """Each micro-prompt's sample count and temperature."""
        return [a for mp in prompts(flow) for a in (f"{mp.name}.params.samples", f"{mp.name}.params.temperature")]

    def moves(self, candidate: Candidate, ctx: MutationContext) -> list[Move]:
        """Each other sample count, per micro-prompt (temperature raised from 0 for k > 1)."""
        out = []
        for mp in prompts(candidate.flow):
            for k in self.values:
                if k == mp.params.samples:
                    continue
                changes: dict[str, float | int] = {"samples": k}
                touches = [f"{mp.name}.params.samples"]
                if k > 1 and mp.params.temperature == 0:
                    changes["temperature"] = VOTE_TEMPERATURE
                    touches.append(f"{mp.name}.params.temperature")
                out.append(
                    Move(
                        f"{mp.name}.params.samples",
                        mp.params.samples,
                        k,
                        swap_node(candidate.flow, mp.with_params(**changes)),
                        touches=touches,
                    )
                )
        return out


def param_mutators() -> list[MoveMutator]:
    """Every parameter mutator of this module."""
    return [ModelChoice(), Temperature(), MaxTokens(), Samples()]
