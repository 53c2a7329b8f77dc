"""Model specs: one string everywhere (`local`, `local:/path.gguf`, `hf:PATH`, `openai:NAME[@URL]`) or any
BaseChatModel."""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any
from urllib.parse import urlparse

from langchain_core.language_models import BaseChatModel

from microprompts.models.errors import ModelSpecError
from microprompts.models.local import LocalChatModel, smollm2_path

ModelLike = str | BaseChatModel

_RESOLVED: dict[str, BaseChatModel] = {}
_LOCK = threading.Lock()
SPEC_FORMS = (
    "local, local:/path/model.gguf, openai:NAME or openai:NAME@http://host:port/v1, "
    "hf:local, hf:/path/model.gguf or hf:/checkpoint/folder (torch: the [soft] extra)"
)
log = logging.getLogger("microprompts.models")

# Where OPENAI_API_KEY may go: OpenAI's own endpoint, or a base URL the user named (on the command line, in Python, in
# configuration). A URL that only an artifact names gets no key: an artifact is data anyone may have written.
_ARTIFACT_URLS: set[str] = set()
_USER_URLS: set[str] = set()


def _base_url(spec: str) -> str | None:
    """The base URL of an `openai:NAME@URL` spec, normalized (None for other specs)."""
    if not spec.startswith("openai:") or "@" not in spec:
        return None
    return spec.split("@", 1)[1].strip().rstrip("/").lower()


def note_artifact_model(spec: str | None) -> None:
    """Record that an artifact names this model spec: its base URL gets no API key unless the user names it too."""
    url = _base_url(spec or "")
    if url is not None:
        with _LOCK:
            _ARTIFACT_URLS.add(url)


def trust_model(spec: str | None) -> None:
    """Record that the user named this model spec (an option, Python code): its base URL may get the API key."""
    url = _base_url(spec or "")
    if url is not None:
        with _LOCK:
            _USER_URLS.add(url)


def _sends_key(url: str) -> bool:
    return url not in _ARTIFACT_URLS or url in _USER_URLS


def resolve_model(model: ModelLike | None, timeout: float | None = None, *, trust: bool = False) -> BaseChatModel:
    """Turn a spec string (or None for `local`) into a chat model; a BaseChatModel passes through unchanged.
    `trust=True` says the user named this spec (see `trust_model`)."""
    if isinstance(model, BaseChatModel):
        return model
    spec = (model or "local").strip()
    if trust:
        trust_model(spec)
    url = _base_url(spec)
    with _LOCK:
        keyed = url is None or _sends_key(url)
        key = f"{spec}|{timeout}|{keyed}"
        if key not in _RESOLVED:
            _RESOLVED[key] = _build(spec, timeout, keyed)
        return _RESOLVED[key]


def resolve_configured(spec: str) -> BaseChatModel:
    """A spec string that a run's config names (`configurable.model`): an HTTP client may have written it, so its base
    URL gets OPENAI_API_KEY only when the user named that URL too (with --model, in Python, `trust_model`)."""
    spec = spec.strip()
    url = _base_url(spec)
    with _LOCK:
        keyed = url is None or url in _USER_URLS
        key = f"{spec}|None|{keyed}"
        if key not in _RESOLVED:
            _RESOLVED[key] = _build(spec, None, keyed)
        return _RESOLVED[key]


def _build(spec: str, timeout: float | None, keyed: bool = True) -> BaseChatModel:
    if spec == "local":
        return LocalChatModel(model_path=str(smollm2_path()))
    if spec.startswith("local:"):
        path = spec[len("local:") :]
        if not path:
            raise ModelSpecError(f"model spec {spec!r} names no file; expected one of: {SPEC_FORMS}")
        if not os.path.isfile(path):
            raise ModelSpecError(f"model spec {spec!r}: no such file {path}")
        return LocalChatModel(model_path=path)
    if spec.startswith("hf:"):
        return _build_hf(spec)
    if spec.startswith("openai:"):
        from langchain_openai import ChatOpenAI

        rest = spec[len("openai:") :]
        name, _, base_url = rest.partition("@")
        if not name:
            raise ModelSpecError(f"model spec {spec!r} names no model; expected one of: {SPEC_FORMS}")
        kwargs: dict[str, Any] = {
            "model": name,
            "max_retries": 0,  # retries are ours: backoff, Retry-After, and one accounting
            "timeout": timeout or float(os.environ.get("MICROPROMPTS_TIMEOUT", "120")),
        }
        if base_url:
            kwargs["base_url"] = base_url
            kwargs["api_key"] = (os.environ.get("OPENAI_API_KEY") if keyed else None) or "not-needed"
            if not keyed and os.environ.get("OPENAI_API_KEY"):
                log.warning(
                    "model URL %s is named only by an artifact or a run's config: OPENAI_API_KEY is not sent to it "
                    "(name it with --model or in Python to send it)",
                    base_url,
                )
        elif not os.environ.get("OPENAI_API_KEY"):
            raise ModelSpecError(f"model spec {spec!r} needs OPENAI_API_KEY in the environment")
        return ChatOpenAI(**kwargs)
    raise ModelSpecError(f"unknown model spec {spec!r}; expected one of: {SPEC_FORMS}")


def _build_hf(spec: str) -> BaseChatModel:
    """`hf:PATH` (a GGUF file or a checkpoint folder; `hf:local` is the embedded SmolLM2) run by torch/transformers."""
    path = spec[len("hf:") :]
    if not path:
        raise ModelSpecError(f"model spec {spec!r} names no model; expected one of: {SPEC_FORMS}")
    path = str(smollm2_path()) if path == "local" else path
    if not os.path.exists(path):
        raise ModelSpecError(f"model spec {spec!r}: no such file or folder {path}")
    from microprompts.models.torch_model import TorchChatModel  # the optional [soft] extra, loaded on first use

    return TorchChatModel(model_path=path)


def model_identity(model: BaseChatModel) -> str:
    """A stable, secret-free identity for cache keys and reports."""
    identity = getattr(model, "identity", None)
    if callable(identity):
        return str(identity())
    if model.__class__.__name__ == "ChatOpenAI":
        base = getattr(model, "openai_api_base", None) or "https://api.openai.com/v1"
        return f"openai:{getattr(model, 'model_name', '?')}@{base}"
    try:
        params = json.dumps(model._identifying_params, sort_keys=True, default=str)
    except Exception:  # noqa: BLE001 - any model's params may be odd; fall back to the class name
        params = ""
    return f"{model.__class__.__module__}.{model.__class__.__name__}:{params}"


def model_label(model: ModelLike | None) -> str | None:
    """The spec string to store in an artifact: a string spec as is, an object by its class (never a key)."""
    if model is None or isinstance(model, str):
        return model
    return None


def is_openai(model: BaseChatModel) -> bool:
    """True for langchain-openai's ChatOpenAI (structured output through `response_format`)."""
    return model.__class__.__name__ in {"ChatOpenAI", "AzureChatOpenAI"}


def is_compatible_server(model: BaseChatModel) -> bool:
    """True for a ChatOpenAI pointed at a server other than OpenAI's (llama.cpp, vLLM, Ollama, ...)."""
    if model.__class__.__name__ != "ChatOpenAI":
        return False
    base = getattr(model, "openai_api_base", None)
    return bool(base) and urlparse(str(base)).hostname != "api.openai.com"
