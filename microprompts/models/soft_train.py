"""Prompt tuning (Lester et al. 2021) with PEFT: k trainable virtual tokens in front of a frozen local model, trained
on (chat messages -> target reply) pairs, early-stopped on a dev loss. Part of the optional `[soft]` extra."""

from __future__ import annotations

import random
import time
import warnings
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import BaseMessage
from pydantic import BaseModel, ConfigDict, Field

from microprompts.models.errors import ModelSpecError
from microprompts.models.soft_prompt import SOFT_EXTRA
from microprompts.models.torch_model import Checkpoint, TorchChatModel

try:
    import torch
    from peft import PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ModelSpecError(f"soft prompt training needs peft: {SOFT_EXTRA}") from exc

__all__ = ["Pair", "SoftTrainConfig", "SoftTrainReport", "pair_loss", "train_prompt_tuning"]

Pair = tuple[list[BaseMessage], str]


class SoftTrainConfig(BaseModel):
    """How to train: virtual tokens, steps (one pair per step), learning rate, dev checks and patience, seed, and the
    text to initialise the virtual tokens from (PEFT's TEXT init: the text's token embeddings, cycled to k)."""

    model_config = ConfigDict(frozen=True)

    num_virtual_tokens: int = Field(default=8, ge=1, le=512)
    steps: int = Field(default=50, ge=1)
    lr: float = Field(default=3e-2, gt=0)
    eval_every: int = Field(default=10, ge=1)
    patience: int = Field(default=3, ge=1)
    seed: int = 0
    init_text: str | None = None
    max_target_tokens: int = Field(default=128, ge=1)


class SoftTrainReport(BaseModel):
    """What training did: the train loss per step, the dev loss at each check, the step kept, and its cost."""

    train_losses: list[float] = []
    dev_losses: list[tuple[int, float]] = []
    best_step: int = 0
    steps: int = 0
    examples: int = 0
    seconds: float = 0.0
    initial_dev_loss: float | None = None
    best_dev_loss: float | None = None


def _encode(model: TorchChatModel, pair: Pair, max_target: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Input ids (prompt + target + end of turn) and labels (-100 on the prompt: only the reply is learned)."""
    messages, target = pair
    tokenizer = model.checkpoint().tokenizer
    prompt = model.prompt_ids(messages)
    reply = list(tokenizer(target, add_special_tokens=False)["input_ids"])[:max_target]
    if tokenizer.eos_token_id is not None:
        reply.append(int(tokenizer.eos_token_id))
    ids = torch.tensor([prompt + reply])
    labels = torch.tensor([[-100] * len(prompt) + reply])
    return ids, labels


def _init_embeddings(ckpt: Checkpoint, text: str | None, k: int, seed: int) -> torch.Tensor:
    """k initial virtual tokens: the init text's token embeddings cycled to k (PEFT's TEXT init, done here because
    PEFT loads the tokenizer by name, which a GGUF file has not), else k random vocabulary embeddings."""
    table = ckpt.model.get_input_embeddings().weight
    ids = list(ckpt.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []
    if not ids:
        gen = torch.Generator().manual_seed(seed)
        ids = torch.randint(0, table.shape[0], (k,), generator=gen).tolist()
    ids = (ids * (k // len(ids) + 1))[:k]
    return table[torch.tensor(ids)].detach().clone()


def pair_loss(model: TorchChatModel, pairs: Sequence[Pair], soft: torch.Tensor | None = None) -> float:
    """Mean cross-entropy of the target replies given the prompts, with `soft` (else the model's own soft prompt)."""
    ckpt = model.checkpoint()
    soft = model.soft_embeddings() if soft is None else soft
    embed = ckpt.model.get_input_embeddings()
    total = 0.0
    with torch.no_grad():
        for pair in pairs:
            ids, labels = _encode(model, pair, 10_000)
            embeds = embed(ids)
            if soft is not None:
                embeds = torch.cat([soft.unsqueeze(0), embeds], dim=1)
                labels = torch.cat([torch.full((1, soft.shape[0]), -100), labels], dim=1)
            total += float(ckpt.model(inputs_embeds=embeds, labels=labels).loss)
    return total / max(1, len(pairs))


def train_prompt_tuning(
    model: TorchChatModel,
    train: Sequence[Pair],
    dev: Sequence[Pair] | None = None,
    config: SoftTrainConfig | None = None,
) -> tuple[torch.Tensor, SoftTrainReport]:
    """Train k virtual tokens on `train` (one pair a step, shuffled with the seed); every `eval_every` steps measure
    the dev loss and keep the best tokens, stopping after `patience` checks without a gain. Returns `[k, hidden]`."""
    config = config or SoftTrainConfig()
    if not train:
        raise ValueError("prompt tuning needs at least one training pair")
    ckpt = model.checkpoint()
    started = time.perf_counter()
    with ckpt.lock:
        torch.set_num_threads(model.threads())
        torch.manual_seed(config.seed)
        peft_config = PromptTuningConfig(
            task_type=TaskType.CAUSAL_LM,
            num_virtual_tokens=config.num_virtual_tokens,
            prompt_tuning_init=PromptTuningInit.RANDOM,
        )
        with warnings.catch_warnings():  # PEFT calls a transformers property deprecated for v6; not ours to fix
            warnings.simplefilter("ignore", FutureWarning)
            peft_model = get_peft_model(ckpt.model, peft_config)
        try:
            tokens = _prompt_parameter(peft_model)
            with torch.no_grad():
                tokens.copy_(_init_embeddings(ckpt, config.init_text, config.num_virtual_tokens, config.seed))
            best, report = _loop(model, peft_model, tokens, train, dev, config)
        finally:
            peft_model.base_model.requires_grad_(False)  # the shared base model stays frozen for inference
    report.seconds = time.perf_counter() - started
    return best, report


def _prompt_parameter(peft_model: Any) -> torch.Tensor:
    """The trainable `[k, hidden]` virtual-token table inside a PEFT prompt-tuning model."""
    return peft_model.prompt_encoder["default"].embedding.weight


def _loop(
    model: TorchChatModel,
    peft_model: torch.nn.Module,
    tokens: torch.Tensor,
    train: Sequence[Pair],
    dev: Sequence[Pair] | None,
    config: SoftTrainConfig,
) -> tuple[torch.Tensor, SoftTrainReport]:
    """The training steps with dev checks; returns the kept tokens and the report (without its seconds)."""
    encoded = [_encode(model, p, config.max_target_tokens) for p in train]
    optimizer = torch.optim.AdamW([tokens], lr=config.lr, weight_decay=0.0)
    order = random.Random(config.seed)
    report = SoftTrainReport()
    best = tokens.detach().clone()
    if dev:
        report.initial_dev_loss = report.best_dev_loss = pair_loss(model, dev, best)
    stale = 0
    peft_model.train()
    for step in range(1, config.steps + 1):
        ids, labels = encoded[order.randrange(len(encoded))]
        loss = peft_model(input_ids=ids, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        report.train_losses.append(float(loss.detach()))
        report.steps, report.examples = step, step
        if not dev:
            best, report.best_step = tokens.detach().clone(), step
        elif step % config.eval_every == 0 or step == config.steps:
            dev_loss = pair_loss(model, dev, tokens.detach())
            report.dev_losses.append((step, dev_loss))
            if report.best_dev_loss is None or dev_loss < report.best_dev_loss:
                best, report.best_step, report.best_dev_loss, stale = tokens.detach().clone(), step, dev_loss, 0
            else:
                stale += 1
                if stale >= config.patience:
                    break
    peft_model.eval()
    return best, report
