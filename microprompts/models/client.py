"""One place every model call goes through: the call cache, structured output, retries and usage."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.utils import count_tokens_approximately
from openai import LengthFinishReasonError

from microprompts.models.cache import CallCache, KeyedSchema, request_key
from microprompts.models.completion import Completion
from microprompts.models.errors import BudgetExceeded, ModelCallError
from microprompts.models.local import LocalChatModel, chat_message
from microprompts.models.phases import phase
from microprompts.models.retry import RetryPolicy, is_transient
from microprompts.models.scoring import ReplyScoring
from microprompts.models.spec import is_compatible_server, is_openai, model_identity
from microprompts.models.structured import invoke_structured, supports_structured_output
from microprompts.models.tracing import emit_cached_call
from microprompts.models.usage import Usage, UsageMeter

__all__ = ["Completion", "ModelCaller", "completion_key", "is_transient"]


def completion_key(
    model: BaseChatModel,
    messages: list[BaseMessage],
    schema: dict[str, Any] | None = None,
    temperature: float = 0.0,
    max_tokens: int = 256,
    sample: int = 0,
    identity: str | None = None,
) -> str:
    """The call cache's key for a request, and the budget's: the one place the fields of a request are hashed
    (`identity`: the model's, when the caller has it already)."""
    return request_key(
        {
            "model": identity if identity is not None else model_identity(model),
            "params": {"temperature": temperature, "max_tokens": max_tokens},
            "messages": [[m.type, str(m.content)] for m in messages],
            "schema": schema,
            "sample": sample,
        }
    )


class ModelCaller(ReplyScoring):
    """Calls chat models with a persistent cache, retries with backoff, structured output and usage metering."""

    keys_requests: ClassVar[bool] = False  # True in a subclass that acts on every request's key (the budget's)

    def __init__(
        self,
        cache: CallCache | None = None,
        max_attempts: int = 4,
        base_delay: float = 0.5,
        max_delay: float = 8.0,
        before_call: Callable[[], None] | None = None,
    ) -> None:
        self.cache = cache
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.before_call = before_call
        self.meter = UsageMeter()
        self._json_object_only: set[str] = set()
        self._format_known: set[str] = set()  # identities whose structured-output format has been settled
        self._probes: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def complete(
        self,
        model: BaseChatModel,
        messages: list[BaseMessage],
        *,
        schema: dict[str, Any] | None = None,
        temperature: float = 0.0,
        max_tokens: int = 256,
        sample: int = 0,
        node: str | None = None,
        meter: UsageMeter | None = None,
    ) -> Completion:
        """One completion, from the cache when the exact request was made before; raises ModelCallError."""
        if self.cache is None and not self.keys_requests:
            # Nothing reads the request's key (no cache, no budget): neither it nor the model's identity is made;
            # the identity matters then only to an OpenAI server's structured-output format.
            identity, key = (model_identity(model) if is_openai(model) else ""), ""
        else:
            identity = model_identity(model)  # once a call: it may serialize the model's parameters
            key = completion_key(model, messages, schema, temperature, max_tokens, sample, identity)
        return self._complete_keyed(
            key,
            model,
            messages,
            identity=identity,
            schema=schema,
            temperature=temperature,
            max_tokens=max_tokens,
            sample=sample,
            node=node,
            meter=meter,
        )

    def _complete_keyed(
        self,
        key: str,
        model: BaseChatModel,
        messages: list[BaseMessage],
        *,
        identity: str,
        schema: dict[str, Any] | None,
        temperature: float,
        max_tokens: int,
        sample: int,
        node: str | None,
        meter: UsageMeter | None,
    ) -> Completion:
        """`complete` once the request's key is known: a subclass overrides this to act on that very key (the
        budget charges it), so the key is computed in one place only."""
        if self.cache is not None:
            with phase("caching"):
                hit = self.cache.get(key)
            if hit is not None:
                done = Completion(**hit, cached=True)
                self._account(done.usage(), node, meter)
                self._trace_hit(model, identity, messages, schema, temperature, max_tokens, sample, done)
                return done
        done = self._call_with_retries(model, identity, messages, schema, temperature, max_tokens, sample, node, meter)
        if self.cache is not None and (done.finish_reason != "length" or temperature == 0):
            # A deterministic request's reply is kept whether or not it validates, cut off by max_tokens included: a
            # warm re-run asks nothing again. A cut-off sampled reply is not: asked again, it may come back whole.
            with phase("caching"):
                self.cache.put(key, done.model_dump(exclude={"cached", "seconds", "logprobs"}))
        return done

    def _trace_hit(
        self,
        model: BaseChatModel,
        identity: str,
        messages: list[BaseMessage],
        schema: dict[str, Any] | None,
        temperature: float,
        max_tokens: int,
        sample: int,
        done: Completion,
    ) -> None:
        """The callback events of the call the cache answered, tagged `cached`, with the reply it gave."""
        kwargs = self._kwargs(model, identity, schema, temperature, max_tokens, sample)
        usage = {
            "input_tokens": done.prompt_tokens,
            "output_tokens": done.completion_tokens,
            "total_tokens": done.prompt_tokens + done.completion_tokens,
        }
        message = AIMessage(
            content=done.text,
            usage_metadata=usage,  # what the reply took when it was paid; the `cached` tag says it was not now
            response_metadata={"finish_reason": done.finish_reason, "cached": True},
        )
        emit_cached_call(model, messages, kwargs, message)

    def _account(self, usage: Usage, node: str | None, meter: UsageMeter | None) -> None:
        self.meter.add(usage, node)
        if meter is not None:
            meter.add(usage, node)

    def _call_with_retries(
        self,
        model: BaseChatModel,
        identity: str,
        messages: list[BaseMessage],
        schema: dict[str, Any] | None,
        temperature: float,
        max_tokens: int,
        sample: int,
        node: str | None,
        meter: UsageMeter | None,
    ) -> Completion:
        """The request, retried on transient failures (see RetryPolicy); raises ModelCallError once it gives up."""
        if self.max_attempts < 1:
            raise ModelCallError("model call failed after 0 attempt (no attempt made)")
        failed: list[Exception] = []  # each failed attempt's error, in order
        args = (model, identity, messages, schema, temperature, max_tokens, sample, node, meter, failed)
        try:
            if self.before_call is not None:
                self.before_call()  # may raise BudgetExceeded: checked before paying, raised as is, not retried
            try:
                return self._attempt(*args)  # the first attempt, outside tenacity (see RetryPolicy.after_first)
            except Exception as exc:
                if not failed or exc is not failed[-1]:
                    raise
                retries = RetryPolicy(self.max_attempts, self.base_delay, self.max_delay).after_first(exc)
                if retries is None:
                    raise
            for attempt in retries:
                if self.before_call is not None:
                    self.before_call()
                with attempt:
                    return self._attempt(*args)
        except Exception as exc:
            if not failed or exc is not failed[-1]:
                raise  # not a failed attempt: the budget's refusal (from before_call or the model) goes up as it is
        last = failed[-1]
        reason = f"{type(last).__name__}: {last}"
        # Say how many attempts: a reply cut by its length limit or a 400 is not retried, and the message shows it.
        tries = f"{len(failed)} attempt{'s' if len(failed) > 1 else ''}"
        if not is_transient(last):
            tries += ", not retryable"
        raise ModelCallError(f"model call failed after {tries} ({reason[:300]})") from last

    def _attempt(
        self,
        model: BaseChatModel,
        identity: str,
        messages: list[BaseMessage],
        schema: dict[str, Any] | None,
        temperature: float,
        max_tokens: int,
        sample: int,
        node: str | None,
        meter: UsageMeter | None,
        failed: list[Exception],
    ) -> Completion:
        """One attempt at the request, its usage accounted: a failure counts its seconds and is added to `failed`."""
        started = time.perf_counter()
        try:
            with phase("model"):  # the model's own time (on a Ray executor: the round trip to an actor)
                message = self._invoke(model, identity, messages, schema, temperature, max_tokens, sample)
        except BudgetExceeded:
            raise
        except Exception as exc:
            failed.append(exc)
            self._account(Usage(failures=1, seconds=time.perf_counter() - started), node, meter)
            raise
        seconds = time.perf_counter() - started
        text = message.content if isinstance(message.content, str) else json.dumps(message.content)
        meta = getattr(message, "usage_metadata", None) or {}
        done = Completion(
            text=text,
            prompt_tokens=int(meta.get("input_tokens") or count_tokens_approximately(messages)),
            completion_tokens=int(meta.get("output_tokens") or max(1, len(text) // 4)),
            finish_reason=(message.response_metadata or {}).get("finish_reason"),
            seconds=seconds,
            logprobs=_logprobs_content(message),
        )
        counts = (1, 0, done.prompt_tokens, done.completion_tokens, seconds, 0)  # done.usage()'s, without the record
        self.meter.add_counts(counts, node)
        if meter is not None:
            meter.add_counts(counts, node)
        return done

    def _invoke(
        self,
        model: BaseChatModel,
        identity: str,
        messages: list[BaseMessage],
        schema: dict[str, Any] | None,
        temperature: float,
        max_tokens: int,
        sample: int,
    ) -> BaseMessage:
        """One request; a structured one to a server that rejects `json_schema` is sent again as `json_object`."""
        probe = self._format_probe(model, identity, schema)
        if probe is not None:
            probe.acquire()
            if self._format_settled(identity):  # another request settled it while this one waited: go in parallel
                probe.release()
                probe = None
        try:
            kwargs = self._kwargs(model, identity, schema, temperature, max_tokens, sample)
            if schema is not None and supports_structured_output(model):
                return invoke_structured(model, messages, _sent(schema), kwargs)
            try:
                message = _send(model, messages, kwargs)
            except Exception as exc:  # classified just below: downgraded and sent again, or raised
                if not self._maybe_downgrade(model, identity, schema, exc):
                    raise
                kwargs = self._kwargs(model, identity, schema, temperature, max_tokens, sample)
                message = _send(model, messages, kwargs)
            if probe is not None:
                with self._lock:
                    self._format_known.add(identity)
            return message
        finally:
            if probe is not None:
                probe.release()

    def _format_probe(
        self, model: BaseChatModel, identity: str, schema: dict[str, Any] | None
    ) -> threading.Lock | None:
        """Until an OpenAI-compatible server has answered one structured request, such requests go out one at a
        time, so a server that rejects `json_schema` rejects one request rather than every one in flight."""
        if schema is None or not is_openai(model) or self._format_settled(identity):
            return None
        with self._lock:
            return self._probes.setdefault(identity, threading.Lock())

    def _format_settled(self, identity: str) -> bool:
        """Whether a structured request to this server has been answered (json_schema works) or downgraded."""
        with self._lock:
            return identity in self._format_known or identity in self._json_object_only

    def _kwargs(
        self,
        model: BaseChatModel,
        identity: str,
        schema: dict[str, Any] | None,
        temperature: float,
        max_tokens: int,
        sample: int,
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens}
        if sample:
            kwargs["seed"] = sample
        if is_compatible_server(model):
            # langchain-openai sends the limit as `max_completion_tokens`, which llama_cpp.server ignores: a
            # runaway reply then fills the whole context. Such servers read `max_tokens`, so send it too.
            kwargs["extra_body"] = {**(getattr(model, "extra_body", None) or {}), "max_tokens": max_tokens}
        if schema is None:
            return kwargs
        if isinstance(model, LocalChatModel):
            kwargs["response_format"] = {"type": "json_object", "schema": _sent(schema)}
        elif is_openai(model):
            if identity in self._json_object_only:
                kwargs["response_format"] = {"type": "json_object", "schema": _sent(schema)}
            else:
                kwargs["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "output", "schema": _sent(schema), "strict": False},
                }
        return kwargs  # any other model is not sent the schema: no copy of it is made

    def _maybe_downgrade(
        self, model: BaseChatModel, identity: str, schema: dict[str, Any] | None, exc: BaseException
    ) -> bool:
        """llama.cpp's server rejects `json_schema` but takes `json_object` with a schema: remember and retry.

        A strict server says 400/422, `llama_cpp.server` says 500; either way the message names `json_schema` or
        `response_format` (any other rejection is not about the output format and is not downgraded).
        """
        if schema is None or not is_openai(model) or identity in self._json_object_only:
            return False
        status = getattr(exc, "status_code", None)
        text = str(exc)
        if not isinstance(status, int) or not (status in (400, 422) or status >= 500):
            return False
        if "json_schema" not in text and "response_format" not in text:
            return False  # another rejection (a context-length 400, say) is not about the output format
        with self._lock:
            self._json_object_only.add(identity)
        return True


def _logprobs_content(message: BaseMessage) -> Any:
    """An OpenAI-style reply's `logprobs.content` (None when the request asked for none)."""
    given = (message.response_metadata or {}).get("logprobs")
    return given.get("content") if isinstance(given, dict) else None


def _sent(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema as a model is given it: a KeyedSchema (shared by many requests) as a plain copy of its own."""
    return schema.fresh() if isinstance(schema, KeyedSchema) else schema


def _send(model: BaseChatModel, messages: list[BaseMessage], kwargs: dict[str, Any]) -> BaseMessage:
    """`model.invoke`, where a reply cut at its token limit comes back as the message it is (finish reason
    "length"), as the local model returns it: langchain-openai raises openai's `LengthFinishReasonError` for a
    structured request cut short, and a 200 response would otherwise be retried as garbled, paying the same cut
    reply again per attempt. The caller caches it (at temperature 0) and the node decides what it is worth."""
    try:
        return model.invoke(messages, **kwargs)
    except LengthFinishReasonError as exc:
        return chat_message(exc.completion.model_dump())
