"""Soft prompts and adapters for one node of a flow: turn dataset rows into (rendered node input -> gold node output)
pairs, train on the node's local model with PEFT (prompt tuning, prefix tuning or LoRA), early-stopped on dev, and
save the tensors beside the artifact. Part of the optional `[soft]` extra: import this module explicitly
(`microprompts.optimizers.soft`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from microprompts.data.dataset import Row
from microprompts.models.soft_distill import distill_soft_prompt
from microprompts.models.soft_prompt import SoftPromptRef
from microprompts.models.soft_train import Pair, SoftTrainConfig, SoftTrainReport, train_soft_prompt
from microprompts.models.torch_model import TorchChatModel, save_soft_prompt
from microprompts.nodes.micro_prompt import MicroPrompt
from microprompts.nodes.render import render_reply

__all__ = ["SoftPromptRun", "distill_node_soft_prompt", "node_pairs", "short_node", "train_node_soft_prompt"]


class SoftPromptRun(BaseModel):
    """A trained soft prompt for one node: its reference (to store in the node's params), the training report (its
    cost: seconds and examples) and the dev loss before and after."""

    model_config = ConfigDict(frozen=True)

    node: str
    ref: SoftPromptRef
    report: SoftTrainReport
    train_pairs: int
    dev_pairs: int


def node_pairs(node: MicroPrompt, rows: Iterable[Row]) -> list[Pair]:
    """(the node's chat messages for a row, the reply the node should write) for every row holding the node's inputs
    and its written fields (for an inner node: rows whose outputs a correct run recorded for it). Other rows are
    skipped; the reply is the gold output rendered in the node's reply format."""
    fields = [f for f in node.writes if f != "reasoning"]
    pairs: list[Pair] = []
    for row in rows:
        if not all(k in row.inputs for k in node.reads) or not all(f in row.output for f in fields):
            continue
        inputs = {k: row.inputs[k] for k in node.reads}
        gold = {f: row.output[f] for f in fields}
        pairs.append((node.render(inputs), render_reply(gold, node.params.reply_format).strip()))
    return pairs


def train_node_soft_prompt(
    node: MicroPrompt,
    model: TorchChatModel,
    train: Iterable[Row],
    dev: Iterable[Row] | None,
    directory: str | Path,
    config: SoftTrainConfig | None = None,
) -> SoftPromptRun:
    """Train a soft prompt for `node` on `model` from `train` rows (early-stopped on `dev` rows), initialised from
    the node's hard prompt (its system prompt text) unless `config.init_text` says otherwise; write the tensors as
    safetensors in `directory` (the artifact's folder) and return their reference with the training report."""
    train_pairs = node_pairs(node, train)
    dev_pairs = node_pairs(node, dev or [])
    if not train_pairs:
        raise ValueError(
            f"node {node.name!r}: no training row holds its inputs {list(node.reads)} and outputs {list(node.writes)}"
        )
    config = config or SoftTrainConfig()
    if config.init_text is None and config.method == "prompt_tuning":
        config = config.model_copy(update={"init_text": str(train_pairs[0][0][0].content)})
    state, report = train_soft_prompt(model, train_pairs, dev_pairs, config)
    ref = save_soft_prompt(state, directory, node.name, model.checkpoint().identity, config.method, config.lora)
    return SoftPromptRun(node=node.name, ref=ref, report=report, train_pairs=len(train_pairs), dev_pairs=len(dev_pairs))


def short_node(node: MicroPrompt) -> MicroPrompt:
    """The node cut to its task section (no inputs list, output format, examples or guidelines): the short prompt
    a distilled soft prompt stands in for the rest of."""
    kept = [s for s in node.sections if s.kind == "task"] or list(node.sections[:1])
    return node.replace(sections=kept, examples=[])


def distill_node_soft_prompt(
    node: MicroPrompt,
    model: TorchChatModel,
    train: Iterable[Row],
    dev: Iterable[Row] | None,
    directory: str | Path,
    config: SoftTrainConfig | None = None,
    short: MicroPrompt | None = None,
) -> SoftPromptRun:
    """Compress `node`'s prompt: train k virtual tokens so `short` (default `short_node(node)`) with them answers the
    rows' inputs as `node` does (KL to its next-token distributions); save them in `directory`. Rows need inputs
    only. Run the short node with the returned reference in its place."""
    short = short or short_node(node)

    def pairs(rows: Iterable[Row]) -> list[tuple[list[Any], list[Any]]]:
        usable = [r for r in rows if all(k in r.inputs for k in node.reads)]
        return [(node.render(dict(r.inputs)), short.render(dict(r.inputs))) for r in usable]

    train_pairs, dev_pairs = pairs(train), pairs(dev or [])
    if not train_pairs:
        raise ValueError(f"node {node.name!r}: no training row holds its inputs {list(node.reads)}")
    config = config or SoftTrainConfig()
    state, report = distill_soft_prompt(model, train_pairs, dev_pairs, config)
    ref = save_soft_prompt(state, directory, f"{node.name}.distilled", model.checkpoint().identity, config.method)
    return SoftPromptRun(node=node.name, ref=ref, report=report, train_pairs=len(train_pairs), dev_pairs=len(dev_pairs))
