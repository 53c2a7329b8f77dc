"""The Ray executor: rows run on this process's threads and each task-model call goes to one of N Ray actors, each
holding its own copy of the model (the embedded model: its own llama.cpp with its own threads).

Only the model's forward pass leaves the process: the caller (call cache, budget charge, retries), the flow (render,
parse, repair), the metric, tracing callbacks, the journal and the search stay here. So a request is charged and
cached once, by the driver, whichever actor answers it, and a run resumed on another executor finds the same cache
keys (the model's identity is the one the actors report). An actor that dies mid-call is restarted by Ray and the
call is sent again (`max_task_retries`); the driver never saw the call fail, so it charges it once.

Loaded only when the `ray` executor is asked for: Ray is an optional extra (``pip install 'microprompts[ray]'``).
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Any, cast

import ray
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from ray.exceptions import RayTaskError

from microprompts.evals.executor import Executor, ExecutorError
from microprompts.models import ModelLike, resolve_model
from microprompts.models.local import LocalChatModel
from microprompts.models.spec import model_identity

__all__ = ["ModelActor", "RayExecutor"]

RESTARTS = 3
"""How many times Ray restarts a dead actor and re-sends the calls it held, before a call fails."""

_POOLS: dict[type, ActorPool] = {}  # the proxy class of each bound model -> the actors that answer it
_POOLS_LOCK = threading.Lock()
_PLAIN = (str, int, float, bool, type(None))


class ModelActor:
    """A Ray actor holding one copy of a model (a spec string resolved here, or a model object shipped here)."""

    def __init__(self, model: str | tuple[type, dict[str, Any]], threads: int) -> None:
        chosen = resolve_model(model, trust=True) if isinstance(model, str) else model[0](**model[1])
        if isinstance(chosen, LocalChatModel) and not chosen.n_threads:
            chosen = chosen.model_copy(update={"n_threads": threads})
        self.model = chosen

    def identity(self) -> str:
        """The model's cache identity, as this worker sees it (the embedded model: its file's hash)."""
        return model_identity(self.model)

    def pid(self) -> int:
        """This worker's process id (tests kill it)."""
        return os.getpid()

    def generate(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any], fields: dict[str, Any]
    ) -> ChatResult:
        """One forward pass: the model (with the caller's changed `fields`, e.g. a copy's temperature) on `messages`."""
        model = self.model.model_copy(update=fields) if fields else self.model
        return model._generate(messages, stop=stop, **kwargs)


_RemoteActor: Any = ray.remote(ModelActor)


def _recipe(model: BaseChatModel) -> tuple[type, dict[str, Any]]:
    """A model object as its class and the fields it was given, which the actor builds it from: its private state
    (locks, clients, call logs) is not shipped."""
    fields = type(model).model_fields
    return type(model), {k: getattr(model, k) for k in model.model_fields_set if k in fields and not fields[k].exclude}


class _Dispatched:
    """Mixed in before a chat model's own class: the proxy keeps the class (so the caller picks the same request
    format, and the cache key's class name is the same) but sends each forward pass to the pool's actors."""

    def identity(self) -> str:
        """The actors' identity of the model, so cache keys match the local executor's."""
        return _pool_of(self).identity

    def _should_stream(self, *args: Any, **kwargs: Any) -> bool:
        return False  # a call is one forward pass on an actor

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        pool = _pool_of(self)
        return pool.generate(messages, stop, kwargs, pool.changed(cast(BaseChatModel, self)))


def _pool_of(model: object) -> ActorPool:
    with _POOLS_LOCK:
        pool = _POOLS.get(type(model))
    if pool is None:
        raise ExecutorError("this model was bound to a Ray executor that is closed now")
    return pool


class ActorPool:
    """N actors holding the same model; a call borrows a free actor, so N calls run at once and none waits behind
    a busy actor while another is idle."""

    def __init__(self, model: ModelLike, replicas: int, cpus: float, threads: int) -> None:
        self.template = resolve_model(model, trust=True)
        shipped = model if isinstance(model, str) else _recipe(self.template)
        options: dict[str, Any] = {"num_cpus": cpus, "max_restarts": RESTARTS, "max_task_retries": RESTARTS}
        try:
            self.actors: list[Any] = [_RemoteActor.options(**options).remote(shipped, threads) for _ in range(replicas)]
        except TypeError as exc:  # Ray could not pickle the model
            raise ExecutorError(
                f"the model {type(self.template).__name__} cannot be shipped to Ray actors ({str(exc)[:200]}); "
                "pass a model spec string instead (local, local:PATH, openai:NAME@URL)"
            ) from None
        self.identity = str(ray.get(self.actors[0].identity.remote()))
        self._free: queue.Queue[Any] = queue.Queue()
        for actor in self.actors:
            self._free.put(actor)
        cls = type(self.template)
        self.proxy_class: type = type(cls.__name__, (_Dispatched, cls), {"__module__": cls.__module__})
        self.proxy = self.template.model_copy()
        self.proxy.__class__ = self.proxy_class
        with _POOLS_LOCK:
            _POOLS[self.proxy_class] = self

    def changed(self, model: BaseChatModel) -> dict[str, Any]:
        """The plain fields (temperature, max tokens, seed, ...) a copy of the proxy changed from the template."""
        out: dict[str, Any] = {}
        for name in type(self.template).model_fields:
            value = getattr(model, name, None)
            if isinstance(value, _PLAIN) and value != getattr(self.template, name, None):
                out[name] = value
        return out

    def generate(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any], fields: dict[str, Any]
    ) -> ChatResult:
        """One forward pass on a free actor; the model's own error comes back as it was raised there."""
        actor = self._free.get()
        try:
            return cast(ChatResult, ray.get(actor.generate.remote(messages, stop, kwargs, fields)))
        except RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None
            raise
        finally:
            self._free.put(actor)

    def close(self) -> None:
        """Stop the actors and forget the proxy."""
        with _POOLS_LOCK:
            _POOLS.pop(self.proxy_class, None)
        for actor in self.actors:
            ray.kill(actor, no_restart=True)


class RayExecutor(Executor):
    """Rows on this process's threads, task-model calls on `replicas` Ray actors (default: one per CPU the cluster
    declares). `address` is a running cluster's (``ray:ADDRESS``); without one, Ray's own choice: `RAY_ADDRESS`, a
    cluster already initialized in this process, or a local one started now and stopped on close."""

    name = "ray"

    def __init__(self, address: str | None = None, replicas: int | None = None) -> None:
        super().__init__(replicas)
        self.address = address
        self._started = False
        self._pools: dict[str, ActorPool] = {}
        self._lock = threading.Lock()

    def _connect(self) -> None:
        if ray.is_initialized():
            return
        if self.address is not None:
            ray.init(address=self.address, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False)
        self._started = True

    def _size(self) -> tuple[int, float]:
        """(actors, CPUs declared per actor): one CPU each while the cluster has enough, a share of them beyond."""
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        replicas = self.replicas if self.replicas is not None else max(1, int(cpus))
        return replicas, min(1.0, cpus / replicas)

    def bind(self, model: ModelLike | None) -> ModelLike | None:
        """A proxy of the model whose forward passes run on this executor's actors (made once per model)."""
        key = model if isinstance(model, str) or model is None else f"object:{id(model)}"
        key = key or "local"
        with self._lock:
            if key not in self._pools:
                self._connect()
                replicas, cpus = self._size()
                threads = int(os.environ.get("MICROPROMPTS_THREADS") or max(1, int(cpus)))
                self._pools[key] = ActorPool(model or "local", replicas, cpus, threads)
                self.replicas = replicas
            return cast(BaseChatModel, self._pools[key].proxy)

    def workers(self, concurrency: int) -> int:
        """At least one row in flight per actor, so every actor has work."""
        return max(1, concurrency, self.replicas or 1)

    def actors(self) -> list[Any]:
        """The actor handles of every bound model (tests kill one)."""
        return [actor for pool in self._pools.values() for actor in pool.actors]

    def describe(self) -> str:
        """``ray xN`` (with the address when one was named)."""
        where = f":{self.address}" if self.address else ""
        return f"ray{where} x{self.replicas if self.replicas is not None else '?'}"

    def close(self) -> None:
        """Stop the actors; shut Ray down if this executor started it."""
        with self._lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()
            if self._started and ray.is_initialized():
                ray.shutdown()
            self._started = False
