"""The model a micro-prompt runs on when its parameters hold a soft prompt: the run's model with the soft prompt's
tensors loaded from the folder of the flow's artifact (the runtime's `soft_dir`), verified by their SHA-256.

Only a model that can carry a soft prompt (`with_soft_prompt`: `TorchChatModel`, the `hf:` spec) runs one; any other
model is one error naming the node. This module never imports torch: it asks the model, so `import microprompts`
stays free of the `[soft]` extra.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Protocol, runtime_checkable

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel

from microprompts.models.soft_prompt import SoftPromptError, SoftPromptRef
from microprompts.nodes.runtime import Runtime
from microprompts.nodes.sections import Params

__all__ = ["SoftPromptModel", "node_model", "soft_model"]

_KEEP = 8  # soft-prompted models kept per process (a LoRA one holds a copy of its model's weights)
_MODELS: OrderedDict[tuple[str, str, str], BaseChatModel] = OrderedDict()
_LOCK = threading.Lock()


@runtime_checkable
class SoftPromptModel(Protocol):
    """A chat model that can run a soft prompt: returns a copy of itself carrying `ref` (its file in `directory`)."""

    def with_soft_prompt(self, ref: SoftPromptRef | None, directory: str | Path | None = None) -> BaseChatModel:
        """A copy running `ref`, its file checked now (a missing or changed file raises SoftPromptError)."""
        ...


def node_model(name: str, params: Params, runtime: Runtime) -> BaseChatModel:
    """The model node `name` calls: the runtime's choice for `params.model`, carrying `params.soft_prompt` when set."""
    model = runtime.model_for(params.model)
    if params.soft_prompt is None:
        return model
    return soft_model(name, model, params.soft_prompt, runtime.soft_dir, params.model)


def soft_model(
    node: str, model: BaseChatModel, ref: SoftPromptRef, directory: str | Path | None, spec: str | None = None
) -> BaseChatModel:
    """`model` carrying the soft prompt `ref` whose file lies in `directory` (built once per process and model, then
    reused); SoftPromptError naming the node when the model cannot carry one, no folder is known, or the file is
    missing, changed or made for another model."""
    if not isinstance(model, SoftPromptModel):
        named = f"{spec!r} ({type(model).__name__})" if spec else type(model).__name__
        raise SoftPromptError(
            f"node {node!r} holds a soft prompt ({ref.file}, {ref.method}) that runs only on an `hf:` model "
            f"(TorchChatModel), but its model is {named}: give the node (params.model) or the run the `hf:PATH` spec "
            f"of the model it was trained on ({ref.base_model})"
        )
    if directory is None:
        raise SoftPromptError(
            f"node {node!r} holds soft prompt file {ref.file}, but its flow knows no folder holding it: load the flow "
            "with Flow.load(path) or set it with flow.evolve(soft_dir=FOLDER)"
        )
    folder = str(Path(directory).resolve())
    identity = _model_key(model)
    key = None if identity is None else (identity, ref.model_dump_json(), folder)
    with _LOCK:  # one build per key: a concurrent row waits for it instead of loading the same tensors again
        cached = None if key is None else _MODELS.get(key)
        if key is not None and cached is not None:
            _MODELS.move_to_end(key)
            return cached
        try:
            tuned = model.with_soft_prompt(ref, folder)
        except SoftPromptError as exc:
            raise SoftPromptError(f"node {node!r}: {exc}") from exc
        if key is not None:
            _MODELS[key] = tuned
            while len(_MODELS) > _KEEP:
                _MODELS.popitem(last=False)
        return tuned


def _model_key(model: BaseChatModel) -> str | None:
    """What tells two models apart for reuse: the model's fields as JSON (a TorchChatModel's path, threads and
    sampling); None (build it each time) for a model whose fields do not serialize."""
    if not isinstance(model, BaseModel):
        return None
    try:
        return f"{type(model).__module__}.{type(model).__qualname__}:{model.model_dump_json()}"
    except (TypeError, ValueError):
        return None
