"""Getting a served flow's models ready before its first request: every model the flow will call is resolved at
start-up (a bad spec fails there), and the ones that load weights (the embedded llama.cpp model: ~13 s on a small
CPU) are loaded in a background thread, so the server answers `/health` at once and says when it is ready.

Until then `/ready` and the run endpoints answer 503 with Retry-After (Kubernetes' readiness answer: a load
balancer sends no traffic to a pod that is not ready, and a client told 503 + Retry-After comes back later)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage

from microprompts.flows import Flow
from microprompts.models import LocalChatModel, ModelLike, resolve_model
from microprompts.serve.store import scrub

log = logging.getLogger("microprompts.serve")

LOADING, READY, FAILED = "loading", "ok", "failed"
RETRY_AFTER_S = 5


def flow_models(flow: Flow, model: ModelLike | None) -> list[BaseChatModel]:
    """The chat models the flow will call: each node's own spec, and `model` (default `local`) for the nodes that
    name none. Resolving them here makes a bad spec fail at start-up, not on each request."""
    specs: set[str] = {p.params.model for p in flow.micro_prompts() if p.params.model}
    resolved: list[BaseChatModel] = [resolve_model(spec) for spec in sorted(specs)]
    if any(p.params.model is None for p in flow.micro_prompts()):
        resolved.append(resolve_model(model))
    return resolved


def needs_loading(model: BaseChatModel) -> bool:
    """True for a model that loads weights before its first answer: the embedded model, or any model with `warm()`."""
    return callable(getattr(model, "warm", None)) or isinstance(model, LocalChatModel)


def warm_model(model: BaseChatModel) -> None:
    """Load the model now: its own `warm()` when it has one; else, for the embedded model, a one-token call (which
    reads the weights into memory once per process)."""
    hook = getattr(model, "warm", None)
    if callable(hook):
        hook()
    elif isinstance(model, LocalChatModel):
        model.invoke([HumanMessage("ok")], max_tokens=1)


class Readiness:
    """Whether the served flow's models are loaded: `loading` until a background thread has warmed them, then `ok`
    (or `failed`, with the reason). A flow whose models need no loading is `ok` at once."""

    def __init__(self, models: Iterable[BaseChatModel]) -> None:
        unique = {id(m): m for m in models}  # chat models are not hashable
        self.models = [m for m in unique.values() if needs_loading(m)]
        self.error: str | None = None
        self.seconds: float | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        if not self.models:
            self.seconds = 0.0
            self._done.set()

    @property
    def state(self) -> str:
        """`loading`, `ok` or `failed`."""
        if not self._done.is_set():
            return LOADING
        return FAILED if self.error is not None else READY

    def start(self) -> None:
        """Start loading in a daemon thread (once); the server keeps answering meanwhile."""
        if self._done.is_set() or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._load, name="microprompts-warm", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            for model in self.models:
                warm_model(model)
        except Exception as exc:  # noqa: BLE001 - a failed load is reported by /health and /ready, not raised
            self.error = scrub(f"{type(exc).__name__}: {exc}").replace("\n", " ")[:500]
            log.error("loading the model failed: %s", self.error)
        self.seconds = time.perf_counter() - started
        if self.error is None:
            log.info("model ready (loaded in %.1f s)", self.seconds)
        self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until loading ends (ok or failed); False if it is still loading after `timeout` seconds."""
        return self._done.wait(timeout)

    def body(self) -> dict[str, object]:
        """The readiness part of `/health` and `/ready`: status, and the load time or the failure."""
        body: dict[str, object] = {"status": self.state}
        if self.seconds is not None and self.error is None:
            body["load_seconds"] = round(self.seconds, 3)
        if self.error is not None:
            body["error"] = self.error
        return body
