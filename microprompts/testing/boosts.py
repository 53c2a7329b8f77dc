"""Ready-made boosts for a :class:`~microprompts.testing.SimTask`: prompt properties that raise its chance of a
right answer."""

from __future__ import annotations

from microprompts.testing.simulated import Boost


def has_examples(gain: float, name: str = "has examples") -> Boost:
    """The system prompt shows at least one worked example."""
    return Boost(name, lambda system, p: p.n_examples > 0, gain)


def min_examples(count: int, gain: float) -> Boost:
    """The system prompt shows at least ``count`` worked examples."""
    return Boost(f"at least {count} examples", lambda system, p: p.n_examples >= count, gain)


def contains(phrase: str, gain: float) -> Boost:
    """The system prompt contains ``phrase`` (case-insensitive)."""
    return Boost(f"contains {phrase!r}", lambda system, p: phrase.lower() in system.lower(), gain)


def data_format(fmt: str, gain: float) -> Boost:
    """Rows are rendered in data format ``fmt`` (markdown, xml or json)."""
    return Boost(f"data_format == {fmt}", lambda system, p: p.data_format == fmt, gain)


def reasoning_on(gain: float) -> Boost:
    """The output asks for a reasoning field."""
    return Boost("reasoning field on", lambda system, p: p.reasoning, gain)


def temperature_zero(gain: float) -> Boost:
    """Sampling is greedy (temperature 0)."""
    return Boost("temperature 0", lambda system, p: p.temperature == 0.0, gain)
