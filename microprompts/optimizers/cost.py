"""What a row costs when models have prices: `Price` (dollars per 1M input and output tokens, or per second for local
models), `parse_price` for ``--price`` values, and `Pricing`, which prices a row's node traces by the model each node
ran on. Without prices the cost of a row stays its tokens (`row_tokens`), as it always was.

Tokens are the cache-independent estimate tokens per row uses (each call's rendered prompt, and its reply's length
/ 4), so a call served from the cache costs what it cost when paid and a resumed run retraces the same choices.
Seconds are measured: a node whose calls were all paid costs the model's seconds; one with a call served from the
cache is priced at that model's mean seconds per token over the paid nodes seen so far in the run (0 before any).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from microprompts.evals import RowResult
from microprompts.flows import Flow
from microprompts.nodes import MicroPrompt
from microprompts.nodes.runtime import NodeTrace
from microprompts.optimizers.selection import pareto_front

__all__ = ["CostUnit", "Price", "PriceError", "Pricing", "cost_front", "node_models", "parse_price", "trace_tokens"]

CostUnit = Literal["tokens", "dollars", "seconds"]
PER_TOKENS = 1_000_000  # token prices are per 1M tokens
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_TOKENS = re.compile(rf"^({_NUMBER})/({_NUMBER})$")
_SECONDS = re.compile(rf"^({_NUMBER})?s$")


class PriceError(ValueError):
    """A price that cannot be read (a bad ``--price`` value, a negative or infinite rate)."""


class Price(BaseModel):
    """A model's price: dollars per 1M input tokens and per 1M output tokens, and dollars per second (local models,
    whose cost is the time they hold a machine). Any part left out costs nothing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: float = Field(default=0.0, description="Dollars per 1M input (prompt) tokens.")
    output: float = Field(default=0.0, description="Dollars per 1M output (completion) tokens.")
    second: float = Field(default=0.0, description="Dollars per second of model time.")

    @field_validator("input", "output", "second")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"a price must be a finite number >= 0, got {value!r}")
        return value

    def tokens_cost(self, input_tokens: float, output_tokens: float) -> float:
        """Dollars for this many input and output tokens."""
        return (self.input * input_tokens + self.output * output_tokens) / PER_TOKENS

    @property
    def per_second_only(self) -> bool:
        """True for a price by time alone (no token rates)."""
        return self.input == 0 and self.output == 0 and self.second > 0


def parse_price(text: str) -> tuple[str, Price]:
    """``SPEC=IN/OUT`` (dollars per 1M input / output tokens) or ``SPEC=Xs`` (dollars per second; ``SPEC=s`` is 1 a
    second, which makes the cost seconds) as (spec, Price); PriceError with the accepted forms otherwise."""
    spec, sep, value = text.rpartition("=")
    spec, value = spec.strip(), value.strip().lower()
    forms = "expected SPEC=IN/OUT (dollars per 1M input/output tokens, e.g. openai:gpt-4o-mini=0.15/0.6) or SPEC=Xs "
    forms += "(dollars per second, e.g. local=0.0001s)"
    if not sep or not spec:
        raise PriceError(f"bad --price {text!r}: {forms}")
    try:
        if match := _TOKENS.match(value):
            return spec, Price(input=float(match.group(1)), output=float(match.group(2)))
        if match := _SECONDS.match(value):
            return spec, Price(second=float(match.group(1)) if match.group(1) else 1.0)
    except ValueError as exc:
        raise PriceError(f"bad --price {text!r}: {forms}") from exc
    raise PriceError(f"bad --price {text!r}: {forms}")


def as_price(value: Price | Mapping[str, Any] | str) -> Price:
    """A Price from a Price, a dict of its fields, or a ``--price`` value without its spec (``0.15/0.6``, ``1s``)."""
    if isinstance(value, Price):
        return value
    if isinstance(value, str):
        return parse_price(f"_={value}")[1]
    try:
        return Price.model_validate(dict(value))
    except ValueError as exc:
        raise PriceError(f"bad price {dict(value)!r}: {exc}") from exc


def trace_tokens(trace: NodeTrace) -> tuple[int, int]:
    """(input, output) tokens of a micro-prompt's trace, cache-independent: its rendered prompt once per reply, and
    each reply's length / 4 (the estimate `row_tokens` sums); (0, 0) for other nodes."""
    if trace.kind != "micro_prompt":
        return 0, 0
    return trace.rendered_tokens * max(1, len(trace.replies)), sum(len(r) // 4 for r in trace.replies)


def node_models(flow: Flow, task: str) -> dict[str, str]:
    """The model spec each micro-prompt of `flow` runs on: its own, else `task` (the run's task model)."""
    return {name: (n.params.model or task) for name, n in flow.nodes.items() if isinstance(n, MicroPrompt)}


@dataclass
class Pricing:
    """Prices per model spec, and what a row costs under them. `task` names the model that nodes without their own
    run on (a spec, as prices name it). A spec with no price costs nothing."""

    prices: Mapping[str, Price]
    task: str = "local"
    _paid_seconds: dict[str, float] = field(default_factory=dict, repr=False)
    _paid_tokens: dict[str, int] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, prices: Mapping[str, Price | Mapping[str, Any] | str], task: str) -> Pricing:
        """Pricing from prices given as Price values, dicts of their fields or ``--price`` value strings."""
        return cls({spec: as_price(p) for spec, p in prices.items()}, task)

    @property
    def unit(self) -> CostUnit:
        """Seconds when every price is exactly 1 per second (``SPEC=s``), else dollars."""
        by_second = all(p.per_second_only and p.second == 1.0 for p in self.prices.values())
        return "seconds" if self.prices and by_second else "dollars"

    def describe(self) -> dict[str, dict[str, float]]:
        """The prices as plain values, by spec (what run.json records)."""
        return {spec: self.prices[spec].model_dump() for spec in sorted(self.prices)}

    def unpriced(self, specs: Iterable[str]) -> list[str]:
        """Those of `specs` that have no price (they cost nothing), each once, in order."""
        return [s for s in dict.fromkeys(specs) if s not in self.prices]

    def observe(self, row: RowResult, models: Mapping[str, str]) -> None:
        """Learn each model's seconds per token from a row's fully paid micro-prompt traces (no call cached)."""
        for trace in row.traces:
            spec = models.get(trace.node)
            if spec is None or trace.kind != "micro_prompt" or trace.usage.cached_calls or not trace.usage.calls:
                continue
            self._paid_seconds[spec] = self._paid_seconds.get(spec, 0.0) + trace.usage.seconds
            self._paid_tokens[spec] = self._paid_tokens.get(spec, 0) + sum(trace_tokens(trace))

    def seconds(self, trace: NodeTrace, spec: str) -> float:
        """A trace's model seconds: measured when every call was paid, else estimated at the model's mean rate."""
        if not trace.usage.cached_calls:
            return trace.usage.seconds
        tokens = self._paid_tokens.get(spec, 0)
        return sum(trace_tokens(trace)) * self._paid_seconds.get(spec, 0.0) / tokens if tokens else 0.0

    def trace_cost(self, trace: NodeTrace, spec: str) -> float:
        """What one node's run cost on model `spec`."""
        price = self.prices.get(spec)
        if price is None or trace.kind != "micro_prompt":
            return 0.0
        cost = price.tokens_cost(*trace_tokens(trace))
        return cost + price.second * self.seconds(trace, spec) if price.second else cost

    def row_cost(self, row: RowResult, models: Mapping[str, str]) -> float:
        """A row's cost: each node's trace priced by the model it ran on (`models`: node name -> spec)."""
        return sum(self.trace_cost(t, models.get(t.node, self.task)) for t in row.traces)


def cost_front(points: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The points no other point beats on both score (higher) and ``cost_per_row`` (lower), by score descending."""
    by_id = {p["id"]: p for p in points}
    front = pareto_front([{"id": p["id"], "score": p["score"], "tokens_per_row": p["cost_per_row"]} for p in points])
    return [by_id[p["id"]] for p in front]
