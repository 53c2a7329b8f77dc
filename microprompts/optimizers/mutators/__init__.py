"""Mutation operators over whole flows: content, section structure, graph structure and parameters."""

from microprompts.optimizers.mutators.base import MutationContext, Mutator

__all__ = ["MutationContext", "Mutator"]
