"""Mutation operators over whole flows: content, section structure, graph structure and parameters."""

from __future__ import annotations

from microprompts.optimizers.mutators.base import MutationContext, Mutator
from microprompts.optimizers.mutators.calibrate import CalibrateLabels
from microprompts.optimizers.mutators.choices import Choices
from microprompts.optimizers.mutators.content import content_mutators
from microprompts.optimizers.mutators.crossover import Crossover
from microprompts.optimizers.mutators.examples import BootstrapExamples, ChooseExamples, ExampleCount, NearestExamples
from microprompts.optimizers.mutators.graph import graph_mutators
from microprompts.optimizers.mutators.params import param_mutators
from microprompts.optimizers.mutators.phrases import DeleteSentence, SwapSentences
from microprompts.optimizers.mutators.reflect import Reflect
from microprompts.optimizers.mutators.structure import (
    AddGuideline,
    DataFormat,
    DropInput,
    DropSection,
    Itemize,
    ReorderSections,
    ReplyFormat,
    ToggleReasoning,
)

__all__ = ["MutationContext", "Mutator", "default_mutators", "no_model_mutators", "structure_mutators"]


def structure_mutators() -> list[Mutator]:
    """The section-structure operators: sections, reasoning, data and reply formats, itemized totals, examples."""
    return [
        DropSection(),
        DropInput(),
        ReorderSections(),
        AddGuideline(),
        ToggleReasoning(),
        DataFormat(),
        ReplyFormat(),
        Itemize(),
        ExampleCount(),
        ChooseExamples(),
        NearestExamples(),
        BootstrapExamples(),
    ]


def no_model_mutators() -> list[Mutator]:
    """Every operator that needs no optimizer model: section structure, examples, phrase edits, parameters (label
    calibration among them: it asks the task model), and the crossover of the parent with another pool member."""
    return [
        *structure_mutators(),
        Choices(),
        DeleteSentence(),
        SwapSentences(),
        *param_mutators(),
        CalibrateLabels(),
        Crossover(),
    ]


def default_mutators(optimizer_model_available: bool) -> list[Mutator]:
    """All operators, in the order the bandit meets them: the no-model ones, the content ones (the model-based
    ones, reflective proposal among them, only with an optimizer model) and the graph ones. Names are unique."""
    reflect: list[Mutator] = [Reflect()] if optimizer_model_available else []
    out = [*no_model_mutators(), *reflect, *content_mutators(optimizer_model_available), *graph_mutators()]
    names = [m.name for m in out]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"two mutators share the name(s) {duplicates}: names must be unique")
    return out
