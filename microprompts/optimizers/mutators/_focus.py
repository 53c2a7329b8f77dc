"""Where to mutate: each micro-prompt's share of the blame for a parent's failing dev rows, read off its traces with
no model call, so that operators which pick a node at random pick the faulty one more often.

A failing row votes for every micro-prompt whose own labelled field is wrong while no micro-prompt upstream of it
is wrong (its input was fine, its answer was not), for the first micro-prompt that raised, and, when a field written
by a plain function or an unlabelled step is wrong, for the micro-prompts that feed it and were not checked. A row
with nothing to go on spreads its vote evenly. Every node keeps a floor (`FLOOR` of an even share), so a node the
evidence misses is still tried.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import networkx as nx

from microprompts.evals import RowResult
from microprompts.flows import Flow
from microprompts.optimizers.mutators._blame import _compared, _wrong_fields
from microprompts.optimizers.mutators._shared import micro_prompts_in_order

__all__ = ["FLOOR", "blame_weights", "node_of", "per_node", "weighted_order"]

FLOOR = 0.25  # each node's least weight, as a share of an even split: evidence steers, it never excludes
T = TypeVar("T")


def blame_weights(flow: Flow, rows: Sequence[RowResult]) -> dict[str, float]:
    """Each micro-prompt's weight (they sum to 1) from the failing rows among `rows`; empty for a flow of fewer than
    two micro-prompts or when no row failed (every node is then as likely as the others)."""
    names = [mp.name for mp in micro_prompts_in_order(flow)]
    failing = [r for r in rows if r.error is not None or r.score < 1.0]
    if len(names) < 2 or not failing:
        return {}
    deps = flow.dependencies()
    votes = dict.fromkeys(names, 0.0)
    for row in failing:
        for name, share in _row_votes(flow, deps, names, row).items():
            votes[name] += share
    total = sum(votes.values()) or 1.0
    even = 1.0 / len(names)
    raw = {n: FLOOR * even + (1.0 - FLOOR) * votes[n] / total for n in names}
    norm = sum(raw.values())
    return {n: w / norm for n, w in raw.items()}


def _row_votes(flow: Flow, deps: nx.DiGraph, names: list[str], row: RowResult) -> dict[str, float]:
    errored = [n for n in names if any(t.node == n and t.error for t in row.traces)]
    if errored:
        return {errored[0]: 1.0}
    ran = {t.node for t in row.traces}
    wrong = {n for n, node in flow.nodes.items() if (not ran or n in ran) and _wrong_fields(node, row, n)}
    prompts = set(names)
    out: dict[str, float] = {}
    for n in wrong:
        upstream = set(nx.ancestors(deps, n)) if n in deps else set()
        if n in prompts:
            if not (upstream & wrong & prompts):
                out[n] = out.get(n, 0.0) + 1.0
            continue
        unchecked = [a for a in names if a in upstream and not _compared(flow.nodes[a], row)]
        for a in unchecked:
            out[a] = out.get(a, 0.0) + 1.0 / len(unchecked)
    if not out:
        return {n: 1.0 / len(names) for n in names}
    return out


def weighted_order(items: Sequence[T], weight: Callable[[T], float], rng: random.Random) -> list[T]:
    """`items` in a random order where heavier ones tend to come first (weighted sampling without replacement,
    Efraimidis-Spirakis keys); with equal weights, a uniform shuffle. Draws one number per item from `rng`."""
    keyed = []
    for item in items:
        w = max(weight(item), 1e-9)
        keyed.append((rng.random() ** (1.0 / w), item))
    keyed.sort(key=lambda pair: pair[0], reverse=True)
    return [item for _, item in keyed]


def node_of(address: str) -> str:
    """The node an address is about (``identify.sections.task`` -> ``identify``)."""
    return address.split(".", 1)[0]


def per_node(focus: Mapping[str, float], addresses: Sequence[str]) -> Callable[[str], float]:
    """A weight per address so that each node's addresses together weigh its focus share (a node with many moves is
    not favoured for having many); addresses of nodes the focus does not name weigh an even share."""
    counts = Counter(node_of(a) for a in addresses)
    even = 1.0 / max(1, len(counts))
    return lambda address: focus.get(node_of(address), even) / counts[node_of(address)]
