"""PEFT wrappers for soft prompts and adapters (part of the optional `[soft]` extra): one place that turns a method
(and its size) into a PEFT model around a frozen base model, for training and for inference alike."""

from __future__ import annotations

import copy
import warnings
from typing import Any

from microprompts.models.errors import ModelSpecError
from microprompts.models.soft_prompt import SOFT_EXTRA, LoraSpec, SoftMethod

try:
    import torch
    from peft import (
        LoraConfig,
        PrefixTuningConfig,
        PromptTuningConfig,
        PromptTuningInit,
        TaskType,
        get_peft_model,
        get_peft_model_state_dict,
        set_peft_model_state_dict,
    )
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ModelSpecError(f"soft prompts need torch and peft: {SOFT_EXTRA}") from exc


def wrap(base: Any, method: SoftMethod, num_virtual_tokens: int = 0, lora: LoraSpec | None = None) -> Any:
    """A PEFT model around `base`: `num_virtual_tokens` trainable virtual tokens (prompt tuning: input embeddings;
    prefix tuning: a key/value prefix at every layer), which leave `base` unchanged and frozen; or a LoRA adapter,
    which rewrites the modules it wraps, so it wraps a copy of `base`."""
    if method == "prompt_tuning":
        config: Any = PromptTuningConfig(
            task_type=TaskType.CAUSAL_LM,
            num_virtual_tokens=num_virtual_tokens,
            prompt_tuning_init=PromptTuningInit.RANDOM,
        )
    elif method == "prefix_tuning":
        config = PrefixTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=num_virtual_tokens)
    elif method == "lora":
        spec = lora or LoraSpec()
        config = LoraConfig(
            task_type=TaskType.CAUSAL_LM,
            r=spec.rank,
            lora_alpha=spec.alpha,
            target_modules=list(spec.targets),
            lora_dropout=0.0,
            bias="none",
        )
        base = copy.deepcopy(base)
    else:  # pragma: no cover - SoftPromptRef validates the method
        raise ModelSpecError(f"unknown soft prompt method {method!r}")
    with warnings.catch_warnings():  # PEFT calls a transformers property deprecated for v6; not ours to fix
        warnings.simplefilter("ignore", FutureWarning)
        model = get_peft_model(base, config)
    model.eval()
    return model


def table(model: Any) -> torch.Tensor:
    """The trainable virtual-token table inside a PEFT prompt- or prefix-tuning model: `[k, width]`."""
    return model.prompt_encoder["default"].embedding.weight


def state(model: Any) -> dict[str, torch.Tensor]:
    """The trained tensors to save (PEFT's adapter state dict: `prompt_embeddings`, or the LoRA matrices), copied."""
    tensors = get_peft_model_state_dict(model, save_embedding_layers=False)
    return {k: v.detach().clone().contiguous() for k, v in tensors.items()}


def load(model: Any, tensors: dict[str, torch.Tensor]) -> None:
    """Put saved tensors into a PEFT model made by `wrap` with the same method and size."""
    set_peft_model_state_dict(model, tensors)
