"""Scoring candidate replies instead of generating one (calibrated labels): `ModelCaller.score_replies`, cached,
budgeted and metered as a completion is, on the local model (exact log-probabilities of whole replies) or an
OpenAI-compatible server (top log-probabilities where the replies part: `server_logprobs`)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.messages.utils import count_tokens_approximately

from microprompts.models.cache import CallCache, request_key
from microprompts.models.completion import Completion
from microprompts.models.errors import ModelCallError
from microprompts.models.phases import phase
from microprompts.models.server_logprobs import TOP_LOGPROBS, label_schema, reply_budget, scores_from_logprobs
from microprompts.models.spec import is_openai, model_identity
from microprompts.models.usage import Usage, UsageMeter

__all__ = ["ReplyScoring", "gives_logprobs"]


def gives_logprobs(model: Any) -> bool:
    """Whether `score_replies` can score replies on this model: the local model (or any with `reply_logprobs`), or
    an OpenAI / OpenAI-compatible chat model (whose server must then return `top_logprobs`)."""
    return callable(getattr(model, "reply_logprobs", None)) or (isinstance(model, BaseChatModel) and is_openai(model))


class ReplyScoring:
    """The part of `ModelCaller` that asks a model for the log-probability of given replies: a model with a
    `reply_logprobs(messages, replies)` method (the local model) or an OpenAI / OpenAI-compatible chat model."""

    cache: CallCache | None
    before_call: Callable[[], None] | None
    _call_with_retries: Callable[..., Completion]  # ModelCaller's: one request, retried and accounted

    def _account(self, usage: Usage, node: str | None, meter: UsageMeter | None) -> None:
        raise NotImplementedError

    def score_replies(
        self,
        model: BaseChatModel,
        messages: list[BaseMessage],
        replies: list[str],
        *,
        node: str | None = None,
        meter: UsageMeter | None = None,
    ) -> list[float]:
        """log p(reply | messages) for each candidate reply (calibrated labels): one paid call, or none when this
        exact request was scored before. ModelCallError when the model gives no log-probabilities or fails."""
        local: Any = getattr(model, "reply_logprobs", None)
        if not gives_logprobs(model):
            raise ModelCallError(
                f"{type(model).__name__} gives no log-probabilities of replies: calibrated labels run on the local "
                "model (local, local:PATH), an OpenAI or OpenAI-compatible server (openai:NAME[@URL]) or a chat "
                "model with a reply_logprobs(messages, replies) method"
            )
        identity = model_identity(model)
        request = {"model": identity, "messages": [[m.type, str(m.content)] for m in messages], "score": replies}
        key = request_key(request)
        new = self._reserve(key)
        if self.cache is not None:
            with phase("caching"):
                hit = self.cache.get(key)
            if hit is not None and _scores_valid(hit.get("logprobs"), replies):
                self._account(Usage(cached_calls=1), node, meter)
                return [float(x) for x in hit["logprobs"]]
            if hit is not None and isinstance(hit.get("unreadable"), str):  # the same answer again: not paid twice
                self._account(Usage(cached_calls=1), node, meter)
                raise ModelCallError(hit["unreadable"])
        unreadable: str | None = None
        if callable(local):
            count: Any = getattr(model, "count_prompt_tokens", None)
            given: Any = count(messages) if callable(count) else count_tokens_approximately(messages)
            tokens = int(given)
            scores = self._score_locally(local, messages, replies, tokens, node, meter)
        else:
            scores, tokens, unreadable = self._score_on_server(model, identity, messages, replies, node, meter)
        if new:
            self._charge_tokens(tokens)
        if self.cache is not None:  # a greedy answer that gives no scores is kept too: a resumed run asks no more
            with phase("caching"):
                self.cache.put(key, {"unreadable": unreadable} if unreadable is not None else {"logprobs": scores})
        if unreadable is not None:
            raise ModelCallError(unreadable)
        return scores

    def _score_locally(
        self,
        scorer: Callable[[list[BaseMessage], list[str]], Any],
        messages: list[BaseMessage],
        replies: list[str],
        prompt_tokens: int,
        node: str | None,
        meter: UsageMeter | None,
    ) -> list[float]:
        """The model's own log-probabilities of the whole replies (one call, not retried: it is in-process), the
        `prompt_tokens` it reads accounted."""
        if self.before_call is not None:
            self.before_call()
        started = time.perf_counter()
        try:
            with phase("model"):
                given: Any = scorer(messages, list(replies))
                scores = [float(x) for x in given]
            if not _scores_valid(scores, replies):
                raise ValueError(f"expected {len(replies)} finite log-probabilities, got {scores[:8]!r}")
        except Exception as exc:
            self._account(Usage(failures=1, seconds=time.perf_counter() - started), node, meter)
            raise ModelCallError(f"scoring {len(replies)} replies failed ({type(exc).__name__}: {exc})") from exc
        self._account(Usage(calls=1, prompt_tokens=prompt_tokens, seconds=time.perf_counter() - started), node, meter)
        return scores

    def _score_on_server(
        self,
        model: BaseChatModel,
        identity: str,
        messages: list[BaseMessage],
        replies: list[str],
        node: str | None,
        meter: UsageMeter | None,
    ) -> tuple[list[float], int, str | None]:
        """One greedy completion asking for top log-probabilities, retried and accounted as any completion (the
        labels' schema sent where the replies are JSON), read where the replies part: the scores, the tokens it took,
        and why it gave no scores (a server without log-probabilities, a reply that never reached a label)."""
        asking = model.model_copy(update={"logprobs": True, "top_logprobs": TOP_LOGPROBS})
        schema = label_schema(replies)
        done = self._call_with_retries(asking, identity, messages, schema, 0.0, reply_budget(replies), 0, node, meter)
        tokens = done.prompt_tokens + done.completion_tokens
        try:
            return scores_from_logprobs(done.logprobs, replies), tokens, None
        except ValueError as exc:
            return [], tokens, f"scoring {len(replies)} replies on {identity} failed: {exc}"

    def _reserve(self, key: str) -> bool:
        """Charge request `key` before it is made; whether it was new (a budgeted caller's; here nothing is)."""
        return False

    def _charge_tokens(self, tokens: int) -> None:
        """Charge the tokens of a request `_reserve` found new (a budgeted caller's; here nothing)."""


def _scores_valid(scores: Any, replies: list[str]) -> bool:
    """One finite (or -inf: an impossible reply) log-probability per reply, none above 0 beyond rounding."""
    if not isinstance(scores, list) or len(scores) != len(replies):
        return False
    return all(
        isinstance(x, (int, float)) and not isinstance(x, bool) and (math.isfinite(x) or x == -math.inf) and x < 1e-6
        for x in scores
    )
