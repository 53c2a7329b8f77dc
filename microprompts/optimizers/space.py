"""Search spaces declared on a flow: `one_of(...)` and `optional(...)` alternatives at addresses, expanded to the
cartesian product of concrete flows for `Enumerate`, and offered as moves to beam search and evolution.

```python
space = SearchSpace(flow, {"classify.params.data_format": one_of("markdown", "json"),
                           "classify.sections.guidelines": optional(Section(kind="guidelines", ...)),
                           "classify.sections.task": one_of("Label the headline.", "Pick the topic.")})
```
A section address takes a Section, a str (that section's text) or None (no such section); `optional(x)` is
`one_of(None, x)`. The flow as given is the baseline; alternatives need not include its current value.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from microprompts.flows import Flow
from microprompts.nodes import MicroPrompt
from microprompts.nodes.sections import REPLY_FORMATS
from microprompts.optimizers.candidate import Candidate
from microprompts.optimizers.mutators._moves import MoveMutator
from microprompts.optimizers.mutators.base import Move, MutationContext

__all__ = ["OneOf", "SearchSpace", "SpaceChoice", "label", "one_of", "optional"]


@dataclass(frozen=True)
class OneOf:
    """Alternatives for one address, in order."""

    alternatives: tuple[Any, ...]

    def __post_init__(self) -> None:
        if not self.alternatives:
            raise ValueError("one_of() needs at least one alternative")


def one_of(*alternatives: Any) -> OneOf:
    """The address takes one of these values."""
    return OneOf(tuple(alternatives))


def optional(value: Any) -> OneOf:
    """The address is absent (None) or holds `value` (for a section: it is left out or added)."""
    return OneOf((None, value))


def label(value: Any) -> Any:
    """A JSON-able label of an alternative, for journals and reports."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [label(v) for v in value]
    if isinstance(value, dict):
        return {str(k): label(v) for k, v in value.items()}
    return value


class SearchSpace:
    """A base flow and, per address, the alternatives to try there."""

    def __init__(self, flow: Flow, choices: dict[str, OneOf | list[Any] | tuple[Any, ...]]) -> None:
        self.flow = flow
        self.choices: dict[str, OneOf] = {
            address: c if isinstance(c, OneOf) else OneOf(tuple(c)) for address, c in choices.items()
        }
        for address, choice in self.choices.items():
            flow.set(address, choice.alternatives[0])  # fails early on a bad address or value

    @classmethod
    def default(cls, flow: Flow) -> SearchSpace:
        """A built-in space for flows that declare none: per micro-prompt, data format x reply format x reasoning
        field (x showing no or all examples, when it has some)."""
        choices: dict[str, OneOf | list[Any] | tuple[Any, ...]] = {}
        for node in flow.nodes.values():
            if not isinstance(node, MicroPrompt):
                continue
            choices[f"{node.name}.params.data_format"] = one_of("markdown", "xml", "json")
            choices[f"{node.name}.params.reply_format"] = one_of(*REPLY_FORMATS)
            choices[f"{node.name}.output.reasoning"] = one_of(False, True)
            if node.examples:
                choices[f"{node.name}.params.n_examples"] = one_of(0, None)
        return cls(flow, choices)

    @property
    def size(self) -> int:
        """How many combinations the space holds."""
        size = 1
        for choice in self.choices.values():
            size *= len(choice.alternatives)
        return size

    def apply(self, picks: dict[str, Any]) -> Flow:
        """The base flow with each address set to the picked value."""
        flow = self.flow
        for address, value in picks.items():
            flow = flow.set(address, value)
        return flow

    def expand(self) -> Iterator[tuple[dict[str, Any], Flow | Exception]]:
        """Every combination in cartesian order (first address varies slowest), as (labels, flow); a combination
        that cannot be built yields the exception instead of a flow."""
        addresses = list(self.choices)
        for combo in itertools.product(*(self.choices[a].alternatives for a in addresses)):
            picks = dict(zip(addresses, combo, strict=True))
            labels = {a: label(v) for a, v in picks.items()}
            try:
                yield labels, self.apply(picks)
            except (ValueError, TypeError, KeyError) as exc:
                yield labels, exc

    def describe(self) -> dict[str, Any]:
        """The space as JSON (for the run's fingerprint and report)."""
        return {a: [label(v) for v in c.alternatives] for a, c in self.choices.items()}

    def __repr__(self) -> str:
        return f"SearchSpace({self.flow.name!r}, {len(self.choices)} choices, {self.size} combinations)"


class SpaceChoice(MoveMutator):
    """Switch one address of a declared search space to another of its alternatives (for beam and evolution)."""

    name = "space_choice"
    kind = "structure"

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    def addresses(self, flow: Flow) -> list[str]:
        """Every address of the space, and the section order of a node whose sections it chooses."""
        out = []
        for address in self.space.choices:
            out.append(address)
            if ".sections." in address:
                out.append(address.split(".sections.")[0] + ".sections")
        return out

    def moves(self, candidate: Candidate, ctx: MutationContext) -> list[Move]:
        """Each alternative that builds and changes the flow, per address."""
        out = []
        current = candidate.flow.content_hash()
        for address, choice in self.space.choices.items():
            for value in choice.alternatives:
                try:
                    child = candidate.flow.set(address, value)
                except (ValueError, TypeError, KeyError):
                    continue
                if child.content_hash() == current:
                    continue
                touches = [address]
                if ".sections." in address:
                    touches.append(address.split(".sections.")[0] + ".sections")
                out.append(Move(address, None, label(value), lambda c=child: c, touches=touches))
        return out
