"""Calibrated labels as an operator (Zhao et al. 2021, "Calibrate before use"): for a node that answers one field
taking a few labels, the task model scores each label's reply on training rows, a bias per label is fitted there, and
the child chooses labels by score plus bias instead of generating. Fitted so that, on those rows, the node is never
worse than always giving the best constant label."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from microprompts.evals.evaluate import row_parts
from microprompts.flows import Flow
from microprompts.models.scoring import gives_logprobs
from microprompts.nodes import Calibration, MicroPrompt
from microprompts.nodes.schema import REASONING
from microprompts.nodes.soft import node_model
from microprompts.optimizers.candidate import Candidate
from microprompts.optimizers.mutators._moves import MoveMutator
from microprompts.optimizers.mutators.base import Move, MutationContext

__all__ = ["CalibrateLabels", "fit_biases", "label_set"]

MAX_ROWS = 24  # training rows scored per fit: each is one task-model call
MAX_SEEN_LABELS = 8  # a string field with more distinct values in train is not a label field


def label_set(node: MicroPrompt, rows: Sequence[Any]) -> tuple[str, list[str]] | None:
    """`(field, labels)` when `node` answers exactly one field that takes a few labels: its schema's enum (a Literal
    or Enum), else the 2 to 8 distinct strings the training rows give it; None otherwise."""
    props = node.output_schema().get("properties", {})
    fields = [f for f in props if f != REASONING]
    if len(fields) != 1:
        return None
    field = fields[0]
    enum = props[field].get("enum")
    if isinstance(enum, list) and 2 <= len(enum) <= 32 and all(isinstance(e, str) for e in enum):
        return field, list(dict.fromkeys(enum))
    if props[field].get("type") != "string":
        return None
    seen = sorted({out[field] for _, out, _ in map(row_parts, rows) if isinstance(out.get(field), str)})
    return (field, seen) if 2 <= len(seen) <= MAX_SEEN_LABELS else None


def _accuracy(scores: np.ndarray, bias: np.ndarray, gold: np.ndarray) -> float:
    return float(np.mean(np.argmax(scores + bias, axis=1) == gold))


def fit_biases(scores: Sequence[Sequence[float]], gold: Sequence[int]) -> tuple[list[float], float]:
    """Per-label biases that maximize the accuracy of argmax(score + bias) on the rows (`gold`: each row's label
    index, -1 for one no label fits), by coordinate ascent from zero over each label's decision thresholds, then
    checked against every constant label: `(biases, accuracy)`, never below the best constant's accuracy."""
    s = np.maximum(np.asarray(scores, dtype=np.float64), -1e4)  # an impossible reply (-inf) as very unlikely
    y = np.asarray(gold)
    n, k = s.shape
    bias = np.zeros(k)
    best = _accuracy(s, bias, y)
    for _ in range(4):
        improved = False
        for label in range(k):
            others = np.max(np.delete(s + bias, label, axis=1), axis=1)
            cuts = np.unique(others - s[:, label])  # the bias at which `label` starts to win each row
            candidates = np.concatenate([[cuts[0] - 1.0], (cuts[:-1] + cuts[1:]) / 2, [cuts[-1] + 1.0]])
            for value in candidates:
                trial = bias.copy()
                trial[label] = value
                accuracy = _accuracy(s, trial, y)
                if accuracy > best + 1e-12:
                    best, bias, improved = accuracy, trial, True
        if not improved:
            break
    for label in range(k):  # a constant answer: `label` wins every row
        constant = float(np.mean(y == label))
        if constant > best + 1e-12:
            bias = np.zeros(k)
            bias[label] = float(np.max(np.max(np.delete(s, label, axis=1), axis=1) - s[:, label])) + 1.0
            best = constant
    return [round(float(b), 6) for b in bias], best


class CalibrateLabels(MoveMutator):
    """Set `params.calibration` of a node that answers one label field, reads only the rows' inputs, and runs on a
    model that gives log-probabilities (the local model): its biases fitted on up to 24 training rows, each scored
    with one task-model call (charged to the budget, and cached like any call)."""

    name: ClassVar[str] = "calibrate"
    kind = "parameters"

    def addresses(self, flow: Flow) -> list[str]:
        """Each micro-prompt's calibration."""
        return [f"{mp.name}.params.calibration" for mp in flow.micro_prompts()]

    def moves(self, candidate: Candidate, ctx: MutationContext) -> list[Move]:
        """One move per node that can be calibrated; the scoring and fitting happen when the child is made."""
        if ctx.runtime is None:
            return []
        flow = candidate.flow
        out = []
        for node in flow.micro_prompts():
            p = node.params
            if p.calibration is not None or p.soft_prompt is not None or p.reasoning:
                continue  # a reasoning field cannot be scored: the label's reply alone would not validate
            found = label_set(node, ctx.train)
            if found is None:
                continue
            field, labels = found
            rows = [
                (inputs, out_.get(field))
                for inputs, out_, _ in map(row_parts, ctx.train)
                if field in out_ and all(k in inputs for k in node.inputs)
            ][:MAX_ROWS]
            model = node_model(node.name, node.params, ctx.runtime)
            if len(rows) < 4 or not gives_logprobs(model):
                continue
            move = Move(f"{node.name}.params.calibration", None, labels, lambda: flow)
            move.make = self._maker(flow, node, field, labels, rows, model, ctx, move)
            out.append(move)
        return out

    def _maker(
        self,
        flow: Flow,
        node: MicroPrompt,
        field: str,
        labels: list[str],
        rows: list[tuple[dict[str, Any], Any]],
        model: Any,
        ctx: MutationContext,
        move: Move,
    ) -> Any:
        """The thunk that scores the rows, fits the biases and returns the child, noting the fit in `move`."""

        def make() -> Flow:
            assert ctx.runtime is not None
            unfitted = Calibration(field=field, labels=tuple(labels), bias=tuple(0.0 for _ in labels))
            texts = node.calibrated_replies(unfitted)
            scores = [
                ctx.runtime.caller.score_replies(model, node.render(inputs), texts, node=node.name)
                for inputs, _ in rows
            ]
            gold = [labels.index(g) if g in labels else -1 for _, g in rows]
            bias, accuracy = fit_biases(scores, gold)
            plain = _accuracy(np.maximum(np.asarray(scores), -1e4), np.zeros(len(labels)), np.asarray(gold))
            constant = max(float(np.mean(np.asarray(gold) == i)) for i in range(len(labels)))
            move.after = dict(zip(labels, bias, strict=True))
            move.note = (
                f"{field} over {len(labels)} labels, fitted on {len(rows)} train rows: accuracy {plain:.3f} "
                f"unbiased -> {accuracy:.3f} (best constant label {constant:.3f})"
            )
            fitted = Calibration(field=field, labels=tuple(labels), bias=tuple(bias))
            return flow.replace_node(node.with_params(calibration=fitted))

        return make
