"""PEFT wrappers for soft prompts (part of the optional `[soft]` extra): one place that turns a method and a number
of virtual tokens into a PEFT model around a frozen base model, for training and for inference alike."""

from __future__ import annotations

import warnings
from typing import Any

from microprompts.models.errors import ModelSpecError
from microprompts.models.soft_prompt import SOFT_EXTRA, SoftMethod

try:
    import torch
    from peft import PrefixTuningConfig, PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ModelSpecError(f"soft prompts need torch and peft: {SOFT_EXTRA}") from exc


def wrap(base: Any, method: SoftMethod, num_virtual_tokens: int) -> Any:
    """A PEFT model holding `num_virtual_tokens` trainable virtual tokens (prompt tuning: input embeddings; prefix
    tuning: a key/value prefix at every layer) around `base`, which PEFT leaves unchanged and frozen."""
    if method == "prompt_tuning":
        config: Any = PromptTuningConfig(
            task_type=TaskType.CAUSAL_LM,
            num_virtual_tokens=num_virtual_tokens,
            prompt_tuning_init=PromptTuningInit.RANDOM,
        )
    elif method == "prefix_tuning":
        config = PrefixTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=num_virtual_tokens)
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
