"""Greedy decoding under a grammar that checks the grammar on the top token first (llama.cpp's own fast path in its
`common_sampler`): the same tokens as llama-cpp-python's sampler, which runs the grammar over the whole vocabulary
(49k tokens on SmolLM2) at every step. Measured here: 1.49x faster generation on seat prompts, one thread."""

from __future__ import annotations

import ctypes
import functools
import math
from typing import Any, cast

import numpy as np

__all__ = ["GreedyGrammarSampler", "with_fast_grammar"]


class GreedyGrammarSampler:
    """Stands in for llama-cpp-python's sampler chain (penalties off, grammar, greedy): the argmax token is kept when
    the grammar accepts it; only otherwise is the grammar applied to every token and the best allowed one taken.
    Both give the first highest-logit token the grammar allows, as llama.cpp's greedy sampler does."""

    def __init__(self, llama: Any, grammar: Any) -> None:
        import llama_cpp
        from llama_cpp import _internals

        self._c = llama_cpp
        self._chain = _internals.LlamaSampler()
        self._chain.add_grammar(llama._model, grammar)
        self._n_vocab = int(llama._n_vocab)
        self._one = (llama_cpp.llama_token_data * 1)()
        self._view: Any = None
        self._all: Any = None  # the full candidate array, made on the first rejected argmax

    def _apply(self, data: Any, size: int) -> None:
        """Run the grammar over `size` candidates in place (a rejected token's logit becomes -inf)."""
        array = self._c.llama_token_data_array(data, size, -1, False)
        self._c.llama_sampler_apply(self._chain.sampler, cast(Any, ctypes.byref(array)))

    def _full_pass(self, logits: np.ndarray) -> int:
        """The grammar over the whole vocabulary, then the first highest allowed logit."""
        if self._all is None:
            self._all = (self._c.llama_token_data * self._n_vocab)()
            self._view = np.ctypeslib.as_array(self._all)
            self._view["id"] = np.arange(self._n_vocab, dtype=np.int32)
        self._view["logit"] = logits
        self._view["p"] = 0.0
        self._apply(self._all, self._n_vocab)
        return int(np.argmax(self._view["logit"]))

    def sample(self, ctx: Any, idx: int = -1) -> int:
        """The next token from the logits at `idx`, accepted into the grammar's state."""
        pointer = self._c.llama_get_logits_ith(ctx.ctx, idx)
        logits = np.ctypeslib.as_array(pointer, shape=(self._n_vocab,))
        token = int(np.argmax(logits))
        one = self._one
        one[0].id, one[0].logit, one[0].p = token, float(logits[token]), 0.0
        self._apply(one, 1)
        if math.isinf(one[0].logit) and one[0].logit < 0:
            token = self._full_pass(logits)
        self._c.llama_sampler_accept(self._chain.sampler, token)
        return token

    def close(self) -> None:
        """Free the grammar sampler."""
        self._chain.close()


def _plain_greedy(kwargs: dict[str, Any]) -> bool:
    """A sampler request that is greedy, with no penalties or logits processors (the micro-prompt default)."""
    return (
        kwargs.get("temp") == 0.0
        and kwargs.get("logits_processor") is None
        and kwargs.get("repeat_penalty", 1.0) == 1.0
        and kwargs.get("frequency_penalty", 0.0) == 0.0
        and kwargs.get("presence_penalty", 0.0) == 0.0
    )


@functools.cache
def with_fast_grammar(base: type) -> type:
    """A subclass of llama-cpp-python's `Llama` (`base`) that samples greedy grammar-constrained calls with
    `GreedyGrammarSampler`; every other call keeps the stock sampler."""

    def _init_sampler(self: Any, **kwargs: Any) -> Any:
        if kwargs.get("grammar") is not None and _plain_greedy(kwargs):
            return GreedyGrammarSampler(self, kwargs["grammar"])
        return base._init_sampler(self, **kwargs)  # type: ignore[attr-defined]

    return type(f"FastGrammar{base.__name__}", (base,), {"_init_sampler": _init_sampler, "__module__": __name__})
