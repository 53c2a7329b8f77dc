"""Mutation operators over whole flows: content, section structure, graph structure and parameters."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from microprompts.optimizers.mutators.base import MutationContext, Mutator

__all__ = ["MutationContext", "Mutator", "default_mutators", "no_model_mutators"]


def no_model_mutators() -> list[Any]:
    """Every operator that needs no optimizer model: section structure, examples, phrase edits, parameters."""
    from microprompts.optimizers.mutators.choices import Choices
    from microprompts.optimizers.mutators.params import param_mutators
    from microprompts.optimizers.mutators.phrases import DeleteSentence, SwapSentences
    from microprompts.optimizers.mutators.structure import structure_mutators

    return [*structure_mutators(), Choices(), DeleteSentence(), SwapSentences(), *param_mutators()]


def _optional(module: str, factory: str, optimizer_model_available: bool, always: bool) -> list[Any]:
    """Operators from a sibling module if it exists (empty when absent). A factory that takes
    `optimizer_model_available` decides for itself; one that does not is used only when `always` is True."""
    try:
        mod = importlib.import_module(f"microprompts.optimizers.mutators.{module}")
    except ModuleNotFoundError as exc:
        if exc.name == f"microprompts.optimizers.mutators.{module}":
            return []
        raise
    make = getattr(mod, factory, None)
    if make is None:
        return []
    if "optimizer_model_available" in inspect.signature(make).parameters:
        return list(make(optimizer_model_available=optimizer_model_available))
    return list(make()) if always else []


def default_mutators(optimizer_model_available: bool) -> list[Any]:
    """All available operators: the no-model ones, graph ones (`graph_mutators()`) and, with an optimizer model,
    the content ones (`content_mutators()`); a module that is not there is skipped."""
    out = no_model_mutators()
    out += _optional("content", "content_mutators", optimizer_model_available, always=optimizer_model_available)
    out += _optional("graph", "graph_mutators", optimizer_model_available, always=True)
    names = [m.name for m in out]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"two mutators share the name(s) {duplicates}: names must be unique")
    return out

