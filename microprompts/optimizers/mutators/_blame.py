"""Credit assignment for textual gradients: which node of a flow caused its failures, and why.

`blame` weighs hard evidence from the failing rows before it asks the optimizer model anything:

- strong: a micro-prompt whose trace has an error (the first in run order); one whose output field is among
  the row's expected outputs and is wrong while every node feeding it is right (it got good input and gave a
  bad answer); or an upstream node whose output value shows up in the wrong field and not in the expected one
  (the wrong value started there and was passed on);
- weak: only a final field is wrong and its writer depends on earlier nodes, so the fault may be upstream.

With strong evidence the model only writes the critique (its choice is constrained to the evidenced node).
With weak evidence it chooses among the failing field's writer and the nodes that feed it; with none, among
all micro-prompts. When the model is missing, weak, truncated or off-schema, the evidence decides alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import networkx as nx

from microprompts.evals import EvalResult, RowResult
from microprompts.flows import Flow
from microprompts.nodes import MicroPrompt
from microprompts.optimizers.mutators._ask import clip, fit_blocks, mentions, show
from microprompts.optimizers.mutators._meta import ask_meta, critique_output, meta_prompt, overhead
from microprompts.optimizers.mutators._prompts import CRITIQUE
from microprompts.optimizers.mutators._shared import micro_prompts_in_order
from microprompts.optimizers.mutators.base import MutationContext

MAX_FAILURES = 3
CRITIQUE_CHARS = 800


def sample_failures(evaluation: EvalResult, ctx: MutationContext, k: int = MAX_FAILURES) -> list[RowResult]:
    """Up to `k` failing rows, errors first, then the lowest scores; ties broken by the context's rng."""
    failures = evaluation.failures()
    ctx.rng.shuffle(failures)
    failures.sort(key=lambda r: (r.error is None, r.score))
    return failures[:k]


def same_value(a: Any, b: Any) -> bool:
    """Equality that forgives case, surrounding spaces and list order: how a human reads 'right'."""
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().casefold() == b.strip().casefold()
    if isinstance(a, list) and isinstance(b, list):
        return sorted(map(_key, a)) == sorted(map(_key, b))
    return bool(a == b)


def _key(value: Any) -> str:
    return value.strip().casefold() if isinstance(value, str) else repr(value)


def _row_output(row: RowResult, node: str) -> dict[str, Any]:
    """What `node` wrote in this row: its last trace's output, else the final prediction."""
    for trace in reversed(row.traces):
        if trace.node == node and trace.output is not None:
            return trace.output
    return row.prediction or {}


def evidence(flow: Flow, rows: Sequence[RowResult], candidates: Sequence[str]) -> tuple[Counter[str], Counter[str]]:
    """(strong, weak) votes per candidate node over the failing rows (see the module docstring)."""
    order = [mp.name for mp in micro_prompts_in_order(flow) if mp.name in candidates]
    deps = flow.dependencies()
    strong: Counter[str] = Counter()
    weak: Counter[str] = Counter()
    for row in rows:
        errored = {t.node for t in row.traces if t.error}
        culprit = next((n for n in order if n in errored), None)
        if culprit is not None:
            strong[culprit] += 1
            continue
        ran = {t.node for t in row.traces}
        here = [n for n in order if not ran or n in ran]  # a node a branch skipped is not to blame for this row
        wrong = [n for n in here if _wrong_fields(flow.nodes[n], row, n)]
        if not wrong:
            for n in here:  # no field to compare: fall back on the feedback naming a node or its field
                if isinstance(node := flow.nodes[n], MicroPrompt) and _named_in(node, row.feedback):
                    weak[n] += 1
                    break
            continue
        first = wrong[0]
        feeders = set(nx.ancestors(deps, first)) & set(candidates)
        compared = {n for n in here if _compared(flow.nodes[n], row)}
        leaks = [n for n in here if n in feeders and _leaked(row, n, first, flow)]
        if leaks:
            strong[leaks[0]] += 1  # a wrong value came from upstream and was passed on faithfully
        elif feeders <= compared or not feeders:
            strong[first] += 1  # every upstream producer was checked and found right: the fault is here
        else:
            weak[first] += 1
    return strong, weak


def _compared(node: Any, row: RowResult) -> bool:
    return any(k in row.expected for k in node.writes)


def _wrong_fields(node: Any, row: RowResult, name: str) -> list[str]:
    got = _row_output(row, name)
    return [k for k in node.writes if k in row.expected and not same_value(got.get(k), row.expected[k])]


def _atoms(value: Any) -> list[str]:
    """The scalar values inside an output, as text: what can be traced into a later node's output."""
    if isinstance(value, dict):
        return [a for v in value.values() for a in _atoms(v)]
    if isinstance(value, list):
        return [a for v in value for a in _atoms(v)]
    if value is None or isinstance(value, bool):
        return []
    return [str(value)]


def _leaked(row: RowResult, feeder: str, writer: str, flow: Flow) -> bool:
    """True when a value `feeder` wrote shows up in a wrong field of `writer` and not in the expected value.

    Only values of 3+ characters count, matched as whole words, so short tokens do not match by accident.
    """
    got = _row_output(row, writer)
    fields = _wrong_fields(flow.nodes[writer], row, writer)
    values = [a for a in _atoms(_row_output(row, feeder)) if len(a.strip()) >= 3]
    for field in fields:
        produced, expected = " ".join(_atoms(got.get(field))), " ".join(_atoms(row.expected[field]))
        if any(mentions(produced, v) and not mentions(expected, v) for v in values):
            return True
    return False


def _named_in(node: MicroPrompt, feedback: str) -> bool:
    text = feedback.casefold()
    return bool(text) and any(word.casefold() in text for word in (node.name, *node.writes))


def blame(
    flow: Flow, evaluation: EvalResult, ctx: MutationContext, nodes: Sequence[str] | None = None
) -> tuple[str, str]:
    """The micro-prompt most responsible for `evaluation`'s failures, with a critique of what it does wrong.

    `nodes` limits the choice (e.g. to nodes whose text is not frozen). Raises ValueError when there is
    nothing to blame (no failures or no candidate micro-prompt).
    """
    order = [mp.name for mp in micro_prompts_in_order(flow)]
    candidates = [n for n in order if nodes is None or n in nodes]
    rows = sample_failures(evaluation, ctx)
    if not candidates or not rows:
        raise ValueError("nothing to blame: no failing rows or no candidate micro-prompt")
    strong, weak = evidence(flow, rows, candidates)
    options, fallback = _options(flow, candidates, strong, weak)
    critique = _ask_critique(flow, rows, options, ctx)
    if critique is not None and critique[0] in options:
        return critique
    return fallback, heuristic_critique(flow, fallback, rows)


def blamed_node(flow: Flow, rows: Sequence[RowResult], nodes: Sequence[str]) -> str | None:
    """The node the evidence of the failing `rows` blames, without asking any model (see the module docstring);
    None when no node of `nodes` is a micro-prompt of the flow or nothing failed."""
    candidates = [mp.name for mp in micro_prompts_in_order(flow) if mp.name in nodes]
    if not candidates or not rows:
        return None
    strong, weak = evidence(flow, rows, candidates)
    return _options(flow, candidates, strong, weak)[1]


def _options(flow: Flow, candidates: list[str], strong: Counter[str], weak: Counter[str]) -> tuple[list[str], str]:
    """The nodes the model may choose from, and the choice when the model gives none."""
    rank = {n: i for i, n in enumerate(candidates)}
    if strong:
        best = max(strong, key=lambda n: (strong[n], -rank[n]))
        return [best], best
    if weak:
        best = max(weak, key=lambda n: (weak[n], -rank[n]))
        feeders = nx.ancestors(flow.dependencies(), best)
        return [n for n in candidates if n in feeders or n == best], best
    return list(candidates), candidates[-1]


def _ask_critique(
    flow: Flow, rows: list[RowResult], options: list[str], ctx: MutationContext
) -> tuple[str, str] | None:
    prompt = meta_prompt("critique", critique_output(options)).with_params(
        temperature=0.3, max_tokens=CRITIQUE_CHARS // 3 + 48
    )
    steps = "\n".join(_describe(mp) for mp in micro_prompts_in_order(flow))
    fixed = len(CRITIQUE.format(steps=steps, failures="")) + overhead(prompt)
    blocks = fit_blocks(
        [render_failure(flow, i, row) for i, row in enumerate(rows, 1)], ctx.max_prompt_chars - fixed - 2 * len(rows)
    )
    body = CRITIQUE.format(steps=steps, failures="\n\n".join(blocks))
    data = ask_meta(ctx, prompt, {"request": body}, ctx.rng.randrange(1_000_000))
    if data is None:
        return None
    node, text = data.get("node"), data.get("critique")
    if not isinstance(node, str) or not isinstance(text, str) or not text.strip() or len(text) > CRITIQUE_CHARS:
        return None
    return node.strip(), text.strip()


def _describe(mp: MicroPrompt) -> str:
    task = mp.section("task")
    what = clip(task.text, 160) if task is not None and task.text else "(no task text)"
    return f"- {mp.name}: reads {', '.join(mp.reads) or 'nothing'}; writes {', '.join(mp.writes)}. {what}"


def render_failure(flow: Flow, index: int, row: RowResult, value_chars: int = 300) -> str:
    """One failing row as text: inputs, expected, each node's output (or error), the metric's feedback."""
    lines = [f"Example {index} (score {row.score:.2f})"]
    lines.append("inputs: " + "; ".join(f"{k}={show(v, value_chars)}" for k, v in row.inputs.items()))
    if row.expected:
        lines.append("expected: " + show(row.expected, value_chars))
    for trace in row.traces:
        if trace.node not in flow.nodes:
            continue
        got = f"ERROR {clip(trace.error, value_chars)}" if trace.error else show(trace.output, value_chars)
        lines.append(f"step {trace.node} -> {got}")
    if row.error and not any(t.error for t in row.traces):
        lines.append("run error: " + clip(row.error, value_chars))
    if row.feedback:
        lines.append("feedback: " + clip(row.feedback, value_chars))
    return "\n".join(lines)


def heuristic_critique(flow: Flow, node: str, rows: Sequence[RowResult], limit: int = CRITIQUE_CHARS) -> str:
    """A critique written without a model: what `node` read, wrote and should have written, per failing row."""
    writes = flow.nodes[node].writes
    parts = []
    for row in rows:
        trace = next((t for t in reversed(row.traces) if t.node == node), None)
        if trace is not None and trace.error:
            parts.append(f"On input {show(trace.inputs, 120)} it failed: {clip(trace.error, 160)}.")
            continue
        got = _row_output(row, node)
        expected = {k: row.expected[k] for k in writes if k in row.expected}
        text = f"On input {show(trace.inputs if trace else row.inputs, 120)} it wrote {show(got, 120)}"
        if expected:
            text += f" where {show(expected, 120)} was expected."
        else:
            text += f"; the flow then gave {show(row.prediction, 120)} where {show(row.expected, 120)} was expected."
        if row.feedback:
            text += f" Feedback: {clip(row.feedback, 120)}"
        parts.append(text)
    return clip(f"Step {node} gets these examples wrong. " + " ".join(parts), limit)
