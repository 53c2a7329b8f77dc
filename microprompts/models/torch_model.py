"""Local open models run by torch/transformers (spec `hf:PATH`), with an optional soft prompt (prompt tuning: virtual
tokens in front of the input; prefix tuning: a key/value prefix at every layer), run through PEFT.

An optional extra (`microprompts[soft]`): nothing in the package imports this module by default; `hf:` specs import
it on first use and users import it explicitly. PATH is a GGUF file (dequantized to float32 by transformers: the
embedded SmolLM2-135M takes about 0.6 GB of memory) or a checkpoint folder (config.json + safetensors).
"""

from __future__ import annotations

import hashlib
import inspect
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from microprompts.models import _peft
from microprompts.models.errors import ModelSpecError
from microprompts.models.local import default_threads, file_sha256
from microprompts.models.soft_prompt import (
    SOFT_EXTRA,
    LoraSpec,
    SoftMethod,
    SoftPromptError,
    SoftPromptRef,
    read_verified,
    write_bytes_atomic,
)

try:
    import torch
    from safetensors.torch import load as load_tensors
    from safetensors.torch import save as save_tensors
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ModelSpecError(f"hf: models and soft prompts need the soft extra: {SOFT_EXTRA}") from exc

__all__ = [
    "Checkpoint",
    "TorchChatModel",
    "checkpoint_sha256",
    "load_checkpoint",
    "load_soft_prompt",
    "save_soft_prompt",
]

_TENSOR = "prompt_embeddings"
_FORMAT = "microprompts-soft-prompt/1"
_LOADED: dict[str, Checkpoint] = {}
_LOAD_LOCK = threading.Lock()
_DIR_HASHES: dict[str, str] = {}


@dataclass
class Checkpoint:
    """A loaded model, its tokenizer, its identity (content hash) and the lock that serializes calls into it."""

    model: Any
    tokenizer: Any
    identity: str
    lock: threading.Lock


def checkpoint_sha256(path: str | Path) -> str:
    """SHA-256 of a GGUF file, or of a checkpoint folder's files (names and contents, in name order)."""
    p = Path(path).resolve()
    if p.is_file():
        return file_sha256(p)
    key = str(p)
    if key not in _DIR_HASHES:
        digest = hashlib.sha256()
        for file in sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith(".")):
            digest.update(f"{file.relative_to(p).as_posix()}\0{file_sha256(file)}\n".encode())
        _DIR_HASHES[key] = digest.hexdigest()
    return _DIR_HASHES[key]


def load_checkpoint(path: str | Path, n_threads: int | None = None) -> Checkpoint:
    """Load (once per process) a causal LM and its tokenizer from a GGUF file or a checkpoint folder, frozen, eval."""
    p = Path(path)
    if not p.exists():
        raise ModelSpecError(f"no model at {p} (an hf: spec names a .gguf file or a checkpoint folder)")
    key = str(p.resolve())
    with _LOAD_LOCK:
        if key not in _LOADED:
            torch.set_num_threads(n_threads or default_threads())
            hf_logging.disable_progress_bar()
            hf_logging.set_verbosity_error()
            where, extra = (str(p.parent), {"gguf_file": p.name}) if p.is_file() else (str(p), {})
            try:
                tokenizer = AutoTokenizer.from_pretrained(where, **extra)
                model = AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32, **extra)
            except (OSError, ValueError) as exc:
                raise ModelSpecError(f"cannot load the model at {p}: {exc}") from exc
            if not getattr(tokenizer, "chat_template", None):
                raise ModelSpecError(f"the model at {p} has no chat template")
            model.eval()
            model.requires_grad_(False)
            _LOADED[key] = Checkpoint(model, tokenizer, f"hf:{checkpoint_sha256(p)}", threading.Lock())
        return _LOADED[key]


def save_soft_prompt(
    tensors: torch.Tensor | Mapping[str, torch.Tensor],
    directory: str | Path,
    stem: str,
    base_model: str,
    method: SoftMethod = "prompt_tuning",
    lora: LoraSpec | None = None,
) -> SoftPromptRef:
    """Write a soft prompt (a `[k, width]` virtual-token table, or the state `train_soft_prompt` returns) or a LoRA
    adapter's tensors as safetensors in `directory` (named by stem and content hash, written atomically) and return
    the reference an artifact stores."""
    named = {_TENSOR: tensors} if isinstance(tensors, torch.Tensor) else dict(tensors)
    named = {k: v.detach().to(torch.float32).contiguous().cpu() for k, v in named.items()}
    k = 0
    if method != "lora":
        table = named.get(_TENSOR)
        if set(named) != {_TENSOR} or table is None or table.ndim != 2:
            raise SoftPromptError(f"a {method} soft prompt is one [tokens, width] tensor named {_TENSOR!r}")
        k = int(table.shape[0])
    elif lora is None:
        raise SoftPromptError("a LoRA adapter is saved with its shape (lora=LoraSpec(...))")
    data = save_tensors(named, metadata={"format": _FORMAT, "base_model": base_model, "method": method})
    sha = hashlib.sha256(data).hexdigest()
    safe_stem = "".join(c if c.isalnum() or c in "._-" else "_" for c in stem)[:80] or "soft"
    ref = SoftPromptRef(
        method=method,
        file=f"{safe_stem}.{sha[:12]}.safetensors",
        sha256=sha,
        num_virtual_tokens=k,
        lora=lora if method == "lora" else None,
        base_model=base_model,
    )
    write_bytes_atomic(ref.path(directory), data)
    return ref


def load_soft_prompt(
    ref: SoftPromptRef, directory: str | Path, expected: Mapping[str, tuple[int, ...]]
) -> dict[str, torch.Tensor]:
    """The tensors a reference names, after the file's hash is checked and its tensor names and shapes are exactly
    the `expected` ones (what a fresh PEFT model of the same method and size holds)."""
    data = read_verified(ref, directory)
    try:
        tensors = load_tensors(data)
    except Exception as exc:
        raise SoftPromptError(f"soft prompt file {ref.path(directory)} is not a valid safetensors file: {exc}") from exc
    if set(tensors) != set(expected):
        missing, extra = sorted(set(expected) - set(tensors))[:3], sorted(set(tensors) - set(expected))[:3]
        raise SoftPromptError(f"soft prompt file {ref.file} does not fit: missing {missing}, unexpected {extra}")
    for name, tensor in tensors.items():
        if tuple(tensor.shape) != tuple(expected[name]) or not tensor.is_floating_point():
            raise SoftPromptError(
                f"soft prompt {ref.file}: {name} has shape {tuple(tensor.shape)}, expected {tuple(expected[name])}"
            )
    return {k: v.to(torch.float32) for k, v in tensors.items()}


class TorchChatModel(BaseChatModel):
    """A transformers causal LM behind LangChain's chat API: the checkpoint's chat template, greedy (temperature 0)
    or seeded sampled generation, explicit threads, usage reported, and an optional soft prompt."""

    model_path: str
    n_threads: int = 0
    temperature: float = 0.0
    max_tokens: int = 256
    seed: int = 0
    soft_prompt: SoftPromptRef | None = None
    soft_dir: str | None = None
    _runner: Any = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "microprompts-torch"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "soft_prompt": self.soft_prompt and self.soft_prompt.sha256}

    def checkpoint(self) -> Checkpoint:
        """The loaded model and tokenizer (loaded on first use)."""
        return load_checkpoint(self.model_path, self.threads())

    def threads(self) -> int:
        """Torch threads for this model: `n_threads`, else `MICROPROMPTS_THREADS`, else all cores but one."""
        return self.n_threads or default_threads()

    def identity(self) -> str:
        """Cache-key identity: the model's content hash, plus the soft prompt's file hash when there is one."""
        base = f"hf:{checkpoint_sha256(self.model_path)}"
        if self.soft_prompt is None:
            return base
        return f"{base}+{self.soft_prompt.method}:{self.soft_prompt.sha256}"

    def with_soft_prompt(self, ref: SoftPromptRef | None, directory: str | Path | None = None) -> TorchChatModel:
        """A copy running `ref` (its file in `directory`), checked now: a missing or changed file fails here."""
        copy = self.model_copy(update={"soft_prompt": ref, "soft_dir": None if ref is None else str(directory or ".")})
        copy._runner = None
        copy.runner()
        return copy

    def runner(self) -> Any:
        """The module that runs calls: the base model, or a PEFT model around it holding the soft prompt (its file
        verified and loaded once; a soft prompt trained on another model is refused)."""
        ckpt = self.checkpoint()
        ref = self.soft_prompt
        if ref is None:
            return ckpt.model
        if self._runner is None:
            if ref.base_model != ckpt.identity:
                raise SoftPromptError(
                    f"soft prompt {ref.file} was trained on {ref.base_model}, not on this model ({ckpt.identity})"
                )
            runner = _peft.wrap(ckpt.model, ref.method, ref.num_virtual_tokens, ref.lora)
            expected = {k: tuple(v.shape) for k, v in _peft.state(runner).items()}
            _peft.load(runner, load_soft_prompt(ref, self.soft_dir or ".", expected))
            if ref.method == "lora":
                runner = runner.merge_and_unload()  # a plain model (its own copy), as fast as the base
            runner.requires_grad_(False)
            self._runner = runner
        return self._runner

    def virtual_tokens(self) -> int:
        """How many virtual tokens each call carries (0 without a soft prompt, and for LoRA)."""
        return 0 if self.soft_prompt is None else self.soft_prompt.num_virtual_tokens

    def prompt_ids(self, messages: list[BaseMessage]) -> list[int]:
        """The token ids of the chat-templated messages, ending with the assistant turn's opening."""
        tokenizer = self.checkpoint().tokenizer
        chat = [{"role": _role(m), "content": str(m.content)} for m in messages]
        text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_prompt_tokens(self, messages: list[BaseMessage]) -> int:
        """The positions a call on `messages` reads: the chat-templated tokens and the virtual ones."""
        return len(self.prompt_ids(messages)) + self.virtual_tokens()

    def reply_logprobs(self, messages: list[BaseMessage], replies: list[str]) -> list[float]:
        """log p(reply, then the end of the turn | messages) for each reply, with the soft prompt when there is one
        (calibrated labels: `ModelCaller.score_replies`)."""
        ckpt = self.checkpoint()
        runner = self.runner()
        ids = self.prompt_ids(messages)
        method = None if self.soft_prompt is None else self.soft_prompt.method
        with ckpt.lock, torch.no_grad():
            torch.set_num_threads(self.threads())
            return [_reply_logprob(ckpt, runner, method, ids, reply) for reply in replies]

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        ckpt = self.checkpoint()
        runner = self.runner()
        ids = self.prompt_ids(messages)
        temperature = float(kwargs.get("temperature", self.temperature))
        max_tokens = int(kwargs.get("max_tokens", self.max_tokens))
        method = None if self.soft_prompt is None else self.soft_prompt.method
        sampling = (temperature, int(kwargs.get("seed", self.seed)))
        with ckpt.lock:
            torch.set_num_threads(self.threads())
            kept, ended = _decode(ckpt, runner, method, ids, sampling, max_tokens)
        text, stopped = ckpt.tokenizer.decode(kept, skip_special_tokens=True), ended
        for s in stop or []:
            if s and s in text:
                text, stopped = text[: text.index(s)], True
        k = self.virtual_tokens()
        message = AIMessage(
            content=text,
            usage_metadata={
                "input_tokens": len(ids) + k,  # virtual tokens take positions and compute like real ones
                "output_tokens": len(kept) + int(ended),
                "total_tokens": len(ids) + k + len(kept) + int(ended),
            },
            response_metadata={"finish_reason": "stop" if stopped else "length", "virtual_tokens": k},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


def _stop_ids(ckpt: Checkpoint) -> set[int]:
    """Token ids that end a reply: the tokenizer's end token and the generation config's (one id or a list)."""
    ids = {ckpt.tokenizer.eos_token_id}
    eos = getattr(getattr(ckpt.model, "generation_config", None), "eos_token_id", None)
    ids.update(eos if isinstance(eos, list) else [eos])
    return {int(i) for i in ids if isinstance(i, int)}


def _decode(
    ckpt: Checkpoint, runner: Any, method: str | None, ids: list[int], sampling: tuple[float, int], max_tokens: int
) -> tuple[list[int], bool]:
    """New token ids after `ids` and whether an end token came; greedy at temperature 0, else sampled from a seeded
    generator. The soft prompt goes in as PEFT trains it (prompt tuning: embeddings before the input's; prefix
    tuning: PEFT's key/value cache before the input), then one KV-cached step per token. PEFT's own `generate` is not
    used: with transformers 5 its prompt-tuning decoding drifts from the training-time forward after the first token."""
    temperature, seed = sampling
    model = ckpt.model if method in ("prompt_tuning", "prefix_tuning") else runner  # LoRA: the merged copy
    stops = _stop_ids(ckpt)
    generator = torch.Generator().manual_seed(seed)
    new: list[int] = []
    with torch.no_grad():
        out, length = _read(model, runner, method, ids)
        arg = _cache_arg(model)
        for _ in range(max_tokens):
            logits = out.logits[0, -1].float()
            if temperature > 0:
                probs = torch.softmax(logits / temperature, dim=-1)
                token = int(torch.multinomial(probs, 1, generator=generator))
            else:
                token = int(logits.argmax())
            if token in stops:
                return new, True
            new.append(token)
            length += 1
            cache = getattr(out, "cache", None) or out.past_key_values
            out = model(input_ids=torch.tensor([[token]]), attention_mask=_mask(length), use_cache=True, **{arg: cache})
    return new, False


def _read(model: Any, runner: Any, method: str | None, ids: list[int]) -> tuple[Any, int]:
    """One forward pass over `ids` with the soft prompt in front (prompt tuning: its embeddings before the input's;
    prefix tuning: PEFT's key/value cache before the input): the output, with logits at every position and the KV
    cache, and how many positions the cache then holds."""
    embeds = model.get_input_embeddings()(torch.tensor([ids]))
    past: Any = None
    length = len(ids)
    if method == "prompt_tuning":
        embeds = torch.cat([runner.get_prompt(batch_size=1).to(embeds.dtype), embeds], dim=1)
        length = embeds.shape[1]
    elif method == "prefix_tuning":
        past = runner.get_prompt(batch_size=1)
        length += runner.active_peft_config.num_virtual_tokens
    out = model(inputs_embeds=embeds, attention_mask=_mask(length), use_cache=True, **{_cache_arg(model): past})
    return out, length


def _reply_logprob(ckpt: Checkpoint, runner: Any, method: str | None, ids: list[int], reply: str) -> float:
    """log p(reply, then the end of the turn | the prompt `ids`), summed over the reply's tokens."""
    model = ckpt.model if method in ("prompt_tuning", "prefix_tuning") else runner
    tail = list(ckpt.tokenizer(reply, add_special_tokens=False)["input_ids"]) + [_end_id(ckpt)]
    out, _ = _read(model, runner, method, ids + tail)
    logits = out.logits[0, -len(tail) - 1 : -1].float()  # the positions that predict each tail token
    picked = torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(tail).unsqueeze(1))
    return float(picked.sum())


def _end_id(ckpt: Checkpoint) -> int:
    """The token that ends a reply: the tokenizer's end token, else the lowest of the generation config's."""
    eos = ckpt.tokenizer.eos_token_id
    return int(eos) if isinstance(eos, int) else min(_stop_ids(ckpt))


def _cache_arg(model: Any) -> str:
    """The forward argument that takes the KV cache: `cache` from transformers 5.25, `past_key_values` before."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _mask(length: int) -> torch.Tensor:
    """An attention mask over `length` positions (the virtual ones included), all attended."""
    return torch.ones(1, length, dtype=torch.long)


def _role(message: BaseMessage) -> str:
    """Map LangChain message types to chat roles."""
    return {"human": "user", "ai": "assistant", "system": "system"}.get(message.type, "user")
