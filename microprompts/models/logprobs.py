"""Log-probabilities of whole candidate replies on a llama.cpp model (llama-cpp-python's `Llama`), for calibrated
labels: the chat prompt is read once and kept in the KV cache (as generation keeps it, so the next call on the same
prompt reuses it), then each reply's tokens go in one batch whose every position returns its logits."""

from __future__ import annotations

from typing import Any, cast

import numpy as np

__all__ = ["reply_logprobs"]


def _chat_prompt(llama: Any, payload: list[dict[str, str]]) -> tuple[str, bool]:
    """The chat prompt as llama-cpp-python renders it from the model file's template (with the assistant turn
    opened), and whether a BOS token is still to be added when tokenizing it."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = (llama.metadata or {}).get("tokenizer.chat_template")
    if not template:
        raise ValueError("the model file has no chat template: its replies cannot be scored as chat turns")
    eos_id, bos_id = llama.token_eos(), llama.token_bos()
    eos = llama._model.token_get_text(eos_id) if eos_id != -1 else ""
    bos = llama._model.token_get_text(bos_id) if bos_id != -1 else ""
    result = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos, stop_token_ids=[eos_id])(
        messages=cast(Any, payload)
    )
    return result.prompt, not result.added_special


def _hold(llama: Any, tokens: list[int]) -> None:
    """Make the KV cache hold exactly `tokens`, reusing the longest prefix it already holds."""
    held, limit = 0, min(llama.n_tokens, len(tokens))
    ids = llama.input_ids
    while held < limit and ids[held] == tokens[held]:
        held += 1
    llama.n_tokens = held
    if held < len(tokens):
        llama.eval(tokens[held:])  # drops whatever the cache held past `held` first
    else:
        llama._ctx.kv_cache_seq_rm(-1, held, -1)


def _log_softmax(row: np.ndarray) -> np.ndarray:
    top = float(row.max())
    return row - (top + float(np.log(np.exp(row - top).sum())))


def _score_tail(llama: Any, tail: list[int], targets: list[int]) -> float:
    """Decode `tail` after what the cache holds, in one batch with logits at every position; the summed log-prob
    of `targets` (the token after each position). The cache then holds what it held before."""
    if len(tail) > llama.n_batch:
        raise ValueError(f"a candidate reply of {len(tail)} tokens is longer than the batch ({llama.n_batch})")
    past = llama.n_tokens
    llama._ctx.kv_cache_seq_rm(-1, past, -1)
    llama._batch.set_batch(batch=tail, n_past=past, logits_all=True)
    llama._ctx.decode(llama._batch)
    n_vocab = llama.n_vocab()
    total = 0.0
    for j, target in enumerate(targets):
        row = np.ctypeslib.as_array(llama._ctx.get_logits_ith(j), shape=(n_vocab,)).astype(np.float64)
        total += float(_log_softmax(row)[target])
    llama._ctx.kv_cache_seq_rm(-1, past, -1)
    return total


def reply_logprobs(llama: Any, payload: list[dict[str, str]], replies: list[str]) -> list[float]:
    """log p(reply, then the end of the turn | the chat `payload`) for each reply, summed over its tokens."""
    prompt, add_bos = _chat_prompt(llama, payload)
    base = llama.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True)
    eos = llama.token_eos()
    scores: list[float] = []
    try:
        for reply in replies:
            full = llama.tokenize((prompt + reply).encode("utf-8"), add_bos=add_bos, special=True) + [eos]
            start = 0  # the reply's first token: where its tokens part from the prompt's (a merge moves it back)
            while start < min(len(base), len(full)) and base[start] == full[start]:
                start += 1
            start = max(1, start)
            _hold(llama, full[: start - 1])
            scores.append(_score_tail(llama, full[start - 1 : -1], full[start:]))
    finally:
        llama._requires_eval = True  # the logits now are a reply's: a generation on this prompt decodes afresh
    return scores
