"""Prompt compression by distillation (issue 23): train k virtual tokens so the model given them and a short prompt
matches the model given the long prompt, token by token (KL divergence from the teacher's next-token distributions
to the student's, over the teacher's own greedy reply to each train input). Part of the optional `[soft]` extra."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import BaseMessage

from microprompts.models.soft_train import SoftTrainConfig, SoftTrainReport, fit
from microprompts.models.torch_model import TorchChatModel, torch

__all__ = ["DistillPair", "distill_soft_prompt"]

DistillPair = tuple[list[BaseMessage], list[BaseMessage]]  # (the long prompt's messages, the short prompt's)
_Item = tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]  # long ids, short ids, reply ids, student offset


def _items(model: TorchChatModel, pairs: Sequence[DistillPair], config: SoftTrainConfig) -> list[_Item]:
    """Each pair tokenized, with the teacher's (the plain model on the long prompt) greedy reply, end token included."""
    tokenizer = model.checkpoint().tokenizer
    teacher = model.with_soft_prompt(None).model_copy(update={"temperature": 0.0})
    offset = config.num_virtual_tokens if config.method == "prompt_tuning" else 0  # PEFT's logits hold the k tokens
    items: list[_Item] = []
    for long, short in pairs:
        text = str(teacher.invoke(long, max_tokens=config.max_target_tokens).content)
        reply = list(tokenizer(text, add_special_tokens=False)["input_ids"])[: config.max_target_tokens]
        if tokenizer.eos_token_id is not None:
            reply.append(int(tokenizer.eos_token_id))
        items.append(
            (
                torch.tensor([model.prompt_ids(long)]),
                torch.tensor([model.prompt_ids(short)]),
                torch.tensor([reply]),
                offset,
            )
        )
    return items


def _kl_loss(base: Any) -> Any:
    """The loss for one item: KL(teacher || student) per reply position, averaged; the teacher is `base` (frozen)."""

    def loss(student: Any, item: _Item) -> torch.Tensor:
        long_ids, short_ids, reply, offset = item
        n, m, r = long_ids.shape[1], short_ids.shape[1], reply.shape[1]
        with torch.no_grad():
            teacher = base(input_ids=torch.cat([long_ids, reply], dim=1)).logits[0, n - 1 : n - 1 + r]
        logits = student(input_ids=torch.cat([short_ids, reply], dim=1)).logits[0, offset + m - 1 : offset + m - 1 + r]
        return torch.nn.functional.kl_div(
            torch.log_softmax(logits.float(), -1),
            torch.log_softmax(teacher.float(), -1),
            log_target=True,
            reduction="batchmean",
        )

    return loss


def distill_soft_prompt(
    model: TorchChatModel,
    train: Sequence[DistillPair],
    dev: Sequence[DistillPair] | None = None,
    config: SoftTrainConfig | None = None,
) -> tuple[dict[str, torch.Tensor], SoftTrainReport]:
    """Train a soft prompt that stands in for the long prompt: with it, the short prompt's next-token distributions
    match the long prompt's over the teacher's replies to `train` inputs (early-stopped on `dev`'s mean KL). Returns
    the state to save (`save_soft_prompt(state, ..., method=config.method)`) and the report (losses are KL, nats)."""
    config = config or SoftTrainConfig()
    if not train:
        raise ValueError("distillation needs at least one (long prompt, short prompt) pair")
    items, dev_items = _items(model, train, config), _items(model, dev or [], config)
    return fit(model, config, items, dev_items, _kl_loss(model.checkpoint().model))
