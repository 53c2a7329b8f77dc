"""Fine-tuning data from an optimized flow: per micro-prompt, chat-format JSONL in the OpenAI fine-tuning shape
(system = the rendered micro-prompt, user = the rendered inputs, assistant = the node's reply), from the rows whose
end-to-end score meets a mark, or from served runs with positive feedback or a corrected output.

Where a node writes the flow's final output, the row's gold output (or the run's correction) replaces the node's
own reply. Every file is validated on write: each line parses, roles are in order, and each line's token count is
reported; a line longer than the target model's context is dropped (and counted), never written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from pydantic import BaseModel, Field

from microprompts._io import atomic_write_text
from microprompts.data.dataset import Row
from microprompts.evals.evaluate import evaluate
from microprompts.evals.score import Metric
from microprompts.evals.synthesis import output_model
from microprompts.flows.flow import Flow
from microprompts.models import ModelCaller, ModelLike
from microprompts.nodes import MicroPrompt
from microprompts.nodes.render import count_tokens, render_reply

__all__ = [
    "FinetuneReport",
    "NodeFile",
    "correction_of",
    "export_finetune",
    "export_runs",
    "last_correction",
    "rows_from_runs",
    "validate_file",
]

ROLES = {"system": "system", "human": "user", "ai": "assistant"}
DEFAULT_CONTEXT = 8192


class NodeFile(BaseModel):
    """One micro-prompt's JSONL file: where, how many lines, and their token counts (total, longest, each)."""

    node: str
    path: str
    lines: int = 0
    tokens: int = 0
    longest: int = 0
    per_line: list[int] = Field(default_factory=list)


class FinetuneReport(BaseModel):
    """What an export read, kept and wrote: rows (or runs) in and kept, the files per node, and lines dropped."""

    rows: int = 0
    kept: int = 0
    files: dict[str, NodeFile] = Field(default_factory=dict)
    dropped: dict[str, int] = Field(default_factory=dict)

    def line(self) -> str:
        """One summary line: rows kept, then per node its lines and tokens."""
        nodes = "; ".join(
            f"{f.node} {f.lines} lines, {f.tokens} tokens (longest {f.longest})" for f in self.files.values()
        )
        dropped = f"; dropped {self.dropped}" if self.dropped else ""
        return f"export-finetune: kept {self.kept} of {self.rows} rows; {nodes or 'no file written'}{dropped}"


def _chat(node: MicroPrompt, inputs: dict[str, Any], output: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """One training line for `node` (its rendered prompt and the reply) and its token count."""
    messages: list[BaseMessage] = [
        *node.render(inputs),
        AIMessage(content=render_reply(output, node.params.reply_format)),
    ]
    shaped = [{"role": ROLES[m.type], "content": str(m.content)} for m in messages]
    return {"messages": shaped}, count_tokens(messages)


def validate_file(path: str | Path) -> list[int]:
    """Check a chat JSONL file line by line (parses, a `messages` list, system first, then user and assistant turns
    in turn ending with the assistant, every content a non-empty string); returns each line's token count."""
    counts: list[int] = []
    for number, text in enumerate(Path(path).read_text(encoding="utf-8").split("\n"), 1):
        if not text.strip():
            continue
        try:
            messages = json.loads(text)["messages"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: line {number}: not a chat line ({type(exc).__name__})") from None
        roles = [m.get("role") if isinstance(m, dict) else None for m in messages] if isinstance(messages, list) else []
        expected = ["system"] + ["user", "assistant"] * ((len(roles) - 1) // 2)
        if len(roles) < 3 or roles != expected:
            raise ValueError(f"{path}: line {number}: roles {roles} are not system, then user/assistant turns")
        if not all(isinstance(m.get("content"), str) and m["content"].strip() for m in messages):
            raise ValueError(f"{path}: line {number}: a message has no text")
        counts.append(sum(len(m["content"]) for m in messages) // 4 + 3 * len(messages))
    return counts


class _Writer:
    """Collects the lines per node, drops those over the context, then writes and validates each file."""

    def __init__(self, flow: Flow, context: int) -> None:
        self.flow, self.context = flow, context
        self.report = FinetuneReport()
        self.lines: dict[str, list[tuple[dict[str, Any], int]]] = {mp.name: [] for mp in flow.micro_prompts()}
        self.finals = set(output_model(flow).model_fields)

    def drop(self, reason: str) -> None:
        self.report.dropped[reason] = self.report.dropped.get(reason, 0) + 1

    def add_traces(self, traces: Iterable[Any], gold: dict[str, Any]) -> None:
        """Each micro-prompt trace of one kept row as a line (gold replacing its final output fields)."""
        for trace in traces:
            data = trace.model_dump() if isinstance(trace, BaseModel) else trace
            node = self.flow.nodes.get(str(data.get("node"))) if isinstance(data, dict) else None
            if not isinstance(node, MicroPrompt) or not isinstance(data.get("output"), dict) or data.get("error"):
                continue
            given = data.get("inputs")
            inputs: dict[str, Any] = given if isinstance(given, dict) else {}
            if any(k not in inputs for k in node.inputs):
                self.drop("trace lacks inputs")
                continue
            output = {k: (gold[k] if k in gold and k in self.finals else v) for k, v in data["output"].items()}
            line, tokens = _chat(node, {k: inputs[k] for k in node.inputs}, output)
            if tokens > self.context:
                self.drop("over context")
                continue
            self.lines[node.name].append((line, tokens))

    def write(self, out_dir: str | Path) -> FinetuneReport:
        """Write `<node>.jsonl` per micro-prompt with lines, atomically, and validate each file as written."""
        target = Path(out_dir)
        target.mkdir(parents=True, exist_ok=True)
        for name, lines in self.lines.items():
            if not lines:
                continue
            path = target / f"{name}.jsonl"
            atomic_write_text(path, "".join(json.dumps(line, ensure_ascii=False) + "\n" for line, _ in lines))
            validate_file(path)
            counts = [tokens for _, tokens in lines]
            self.report.files[name] = NodeFile(
                node=name, path=str(path), lines=len(lines), tokens=sum(counts), longest=max(counts), per_line=counts
            )
        return self.report


def export_finetune(
    flow: Flow,
    rows: Sequence[Any],
    metric: Metric,
    out_dir: str | Path,
    *,
    model: ModelLike | None = None,
    caller: ModelCaller | None = None,
    min_score: float = 1.0,
    context: int = DEFAULT_CONTEXT,
) -> FinetuneReport:
    """Run `flow` on `rows`, keep the rows scoring at least `min_score`, and write each micro-prompt's calls on them
    as chat JSONL under `out_dir` (gold outputs where a node writes the flow's output)."""
    result = evaluate(flow, rows, metric, model=model, caller=caller)
    writer = _Writer(flow, context)
    writer.report.rows = len(result.rows)
    for ran in result.rows:
        if ran.error is not None or ran.score < min_score:
            writer.drop("error" if ran.error is not None else "below min score")
            continue
        writer.report.kept += 1
        writer.add_traces(ran.traces, ran.expected)
    return writer.write(out_dir)


def correction_of(feedback: dict[str, Any]) -> dict[str, Any] | None:
    """The corrected output attached to feedback: its `correction` (the output fields the run should have given, as
    `POST /feedback` validated them), else, from clients before that field, a comment that is a JSON object with an
    `output` object."""
    given = feedback.get("correction")
    if isinstance(given, dict) and given:
        return given
    comment = feedback.get("comment")
    if not isinstance(comment, str) or not comment.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(comment)
    except (json.JSONDecodeError, RecursionError):
        return None
    output = data.get("output") if isinstance(data, dict) else None
    return output if isinstance(output, dict) and output else None


def last_correction(run: dict[str, Any]) -> dict[str, Any] | None:
    """A run's latest correction among its feedback (None without one)."""
    notes = [f for f in run.get("feedback") or [] if isinstance(f, dict)]
    return next((c for c in map(correction_of, reversed(notes)) if c is not None), None)


def export_runs(
    flow: Flow,
    runs: Sequence[dict[str, Any]],
    out_dir: str | Path,
    min_score: float = 1.0,
    context: int = DEFAULT_CONTEXT,
) -> FinetuneReport:
    """Write chat JSONL from served runs (as the run store gives them): a run is kept when its last feedback scores at
    least `min_score` or carries a corrected output (which then replaces the final output fields)."""
    writer = _Writer(flow, context)
    writer.report.rows = len(runs)
    for run in runs:
        notes = [f for f in run.get("feedback") or [] if isinstance(f, dict)]
        if run.get("error") or not notes:
            writer.drop("error" if run.get("error") else "no feedback")
            continue
        correction = last_correction(run)
        if correction is None and float(notes[-1].get("score", 0.0)) < min_score:
            writer.drop("below min score")
            continue
        writer.report.kept += 1
        writer.add_traces(run.get("traces") or [], correction or {})
    return writer.write(out_dir)


def rows_from_runs(flow: Flow, runs: Sequence[dict[str, Any]], min_score: float = 1.0) -> list[Row]:
    """Labelled rows from served runs with feedback: where a run has a correction, its inputs with the correction as
    the gold (over the run's own output where the correction fixes only some fields; a run that failed has only the
    correction); else a run that did not fail and whose last feedback scores at least `min_score` has its own output
    as the gold. Runs lacking an input, or with neither, are left out."""
    rows: list[Row] = []
    for run in runs:
        notes = [f for f in run.get("feedback") or [] if isinstance(f, dict)]
        inputs, outputs = run.get("inputs"), run.get("outputs")
        if not notes or not isinstance(inputs, dict) or any(k not in inputs for k in flow.input_keys):
            continue
        own = outputs if isinstance(outputs, dict) and not run.get("error") else None
        correction = last_correction(run)
        if correction is not None:
            gold: dict[str, Any] | None = {**(own or {}), **correction}
        elif own is not None and float(notes[-1].get("score", 0.0)) >= min_score:
            gold = own
        else:
            gold = None
        if gold is not None:
            rows.append(Row(inputs={k: inputs[k] for k in flow.input_keys}, output=gold, id=run.get("run_id")))
    return rows
