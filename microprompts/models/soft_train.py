"""Soft prompts trained with PEFT on a frozen local model: prompt tuning (Lester et al. 2021, k trainable input
embeddings in front), prefix tuning (Li & Liang 2021, a trainable key/value prefix at every layer) and LoRA (Hu et
al. 2021, low-rank updates of chosen weights, on a copy of the model), from (chat messages -> target reply) pairs,
early-stopped on a dev loss. Part of the optional `[soft]` extra."""

from __future__ import annotations

import random
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.messages import BaseMessage
from pydantic import BaseModel, ConfigDict, Field

from microprompts.models import _peft
from microprompts.models.soft_prompt import LoraSpec, SoftMethod
from microprompts.models.torch_model import Checkpoint, TorchChatModel, torch

__all__ = [
    "Pair",
    "SoftTrainConfig",
    "SoftTrainReport",
    "encode_pair",
    "fit",
    "pair_loss",
    "reply_loss",
    "train_soft_prompt",
]

Pair = tuple[list[BaseMessage], str]


class SoftTrainConfig(BaseModel):
    """How to train: the method (and a LoRA adapter's shape), virtual tokens, steps (one pair per step), learning
    rate, dev checks and patience, seed, and (prompt tuning) the text to initialise the virtual tokens from (PEFT's
    TEXT init: the text's token embeddings, cycled to k; prefix tuning starts from PEFT's random init)."""

    model_config = ConfigDict(frozen=True)

    method: SoftMethod = "prompt_tuning"
    lora: LoraSpec = LoraSpec()
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


def encode_pair(model: TorchChatModel, pair: Pair, max_target: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Input ids (prompt + target + end of turn, the target cut to `max_target` tokens) and labels (-100 on the
    prompt: only the reply is learned)."""
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


Item = Any  # one training example in the form a loss function takes
LossFn = Callable[[Any, Item], torch.Tensor]


def reply_loss(runner: Any, item: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy of an encoded reply (`_encode`'s ids and labels) under `runner`."""
    ids, labels = item
    return runner(input_ids=ids, labels=labels).loss


def _mean_loss(runner: Any, items: Sequence[Item], loss_fn: LossFn = reply_loss) -> float:
    """Mean loss over `items` under `runner` (the base model or a PEFT model), without gradients."""
    with torch.no_grad():
        total = sum(float(loss_fn(runner, item)) for item in items)
    return total / max(1, len(items))


def pair_loss(model: TorchChatModel, pairs: Sequence[Pair]) -> float:
    """Mean cross-entropy of the target replies given the prompts, with the model's soft prompt if it has one."""
    runner = model.runner()
    with model.checkpoint().lock, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # PEFT's prefix tuning passes `past_key_values`
        return _mean_loss(runner, [encode_pair(model, p, 10_000) for p in pairs])


def train_soft_prompt(
    model: TorchChatModel,
    train: Sequence[Pair],
    dev: Sequence[Pair] | None = None,
    config: SoftTrainConfig | None = None,
) -> tuple[dict[str, torch.Tensor], SoftTrainReport]:
    """Train a soft prompt or LoRA adapter on `train` (one pair a step, drawn with the seed); every `eval_every` steps
    measure the dev loss and keep the best state, stopping after `patience` checks without a gain. Returns the state
    to save (`save_soft_prompt(state, ..., method=config.method, lora=config.lora)`) and the report."""
    config = config or SoftTrainConfig()
    if not train:
        raise ValueError("soft prompt training needs at least one training pair")
    items = [encode_pair(model, p, config.max_target_tokens) for p in train]
    return fit(model, config, items, [encode_pair(model, p, 10_000) for p in dev or []], reply_loss)


def fit(
    model: TorchChatModel, config: SoftTrainConfig, train: Sequence[Item], dev: Sequence[Item], loss_fn: LossFn
) -> tuple[dict[str, torch.Tensor], SoftTrainReport]:
    """Wrap the model for `config.method`, then minimise `loss_fn(peft_model, item)` over `train` items (one a step),
    early-stopped on the mean loss over `dev` items; returns the best state and the report, with its seconds."""
    ckpt = model.checkpoint()
    started = time.perf_counter()
    with ckpt.lock:
        torch.set_num_threads(model.threads())
        torch.manual_seed(config.seed)
        k = 0 if config.method == "lora" else config.num_virtual_tokens
        peft_model = _peft.wrap(ckpt.model, config.method, k, config.lora)
        if config.method == "prompt_tuning":
            with torch.no_grad():
                _peft.table(peft_model).copy_(_init_embeddings(ckpt, config.init_text, k, config.seed))
        try:
            with warnings.catch_warnings():  # PEFT's prefix tuning passes `past_key_values`, deprecated in 5.25
                warnings.simplefilter("ignore", FutureWarning)
                best, report = _loop(peft_model, train, dev, loss_fn, config)
        finally:
            ckpt.model.requires_grad_(False)  # the shared base model stays frozen for inference
            peft_model.eval()
    report.seconds = time.perf_counter() - started
    return best, report


def _loop(
    peft_model: Any, train: Sequence[Item], dev: Sequence[Item], loss_fn: LossFn, config: SoftTrainConfig
) -> tuple[dict[str, torch.Tensor], SoftTrainReport]:
    """The training steps with dev checks; returns the kept state and the report (without its seconds)."""
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    order = random.Random(config.seed)
    report = SoftTrainReport()
    best = _peft.state(peft_model)
    if dev:
        peft_model.eval()
        report.initial_dev_loss = report.best_dev_loss = _mean_loss(peft_model, dev, loss_fn)
    stale = 0
    for step in range(1, config.steps + 1):
        peft_model.train()
        loss = loss_fn(peft_model, train[order.randrange(len(train))])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        report.train_losses.append(float(loss.detach()))
        report.steps, report.examples = step, step
        if not dev:
            best, report.best_step = _peft.state(peft_model), step
        elif step % config.eval_every == 0 or step == config.steps:
            peft_model.eval()
            dev_loss = _mean_loss(peft_model, dev, loss_fn)
            report.dev_losses.append((step, dev_loss))
            if report.best_dev_loss is None or dev_loss < report.best_dev_loss:
                best, report.best_step, report.best_dev_loss, stale = _peft.state(peft_model), step, dev_loss, 0
            else:
                stale += 1
                if stale >= config.patience:
                    break
    return best, report
