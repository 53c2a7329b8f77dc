"""The embedded model scores whole replies (calibrated labels): the same log-probabilities as reading every position's
logits off a full decode, and scoring leaves the model answering as a fresh one does."""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import pytest
from langchain_core.messages import HumanMessage, SystemMessage

pytestmark = pytest.mark.integration

PAYLOAD = [
    {"role": "system", "content": "Answer with a JSON object."},
    {"role": "user", "content": "Is Paris in France? Reply yes or no."},
]
REPLIES = ['{"answer": "yes"}', '{"answer": "no"}', '{"answer": "maybe not"}']


@pytest.fixture(scope="module")
def path() -> str:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (pip install 'microprompts[local]')")
    from microprompts.models import ModelSpecError, smollm2_path

    try:
        return str(smollm2_path())
    except ModelSpecError as exc:
        pytest.skip(str(exc))


def _by_full_decode(path: str) -> list[float]:
    """Each reply's log-probability from one decode of prompt + reply + end of turn with logits at every position."""
    from llama_cpp import Llama

    from microprompts.models.logprobs import _chat_prompt, _log_softmax

    llama: Any = Llama(model_path=path, n_ctx=512, n_threads=1, verbose=False, seed=0, logits_all=True)
    try:
        prompt, add_bos = _chat_prompt(llama, PAYLOAD)
        base = llama.tokenize(prompt.encode(), add_bos=add_bos, special=True)
        out = []
        for reply in REPLIES:
            full = llama.tokenize((prompt + reply).encode(), add_bos=add_bos, special=True) + [llama.token_eos()]
            llama.reset()
            llama.eval(full)
            rows = np.asarray(llama.scores, dtype=np.float64)
            out.append(sum(float(_log_softmax(rows[i - 1])[full[i]]) for i in range(len(base), len(full))))
        return out
    finally:
        llama.close()


def test_reply_scores_match_a_full_decode_and_leave_generation_as_it_was(path: str) -> None:
    from microprompts.models import LocalChatModel

    model = LocalChatModel(model_path=path, n_ctx=1024, n_threads=1, replicas=1)
    messages = [SystemMessage(PAYLOAD[0]["content"]), HumanMessage(PAYLOAD[1]["content"])]
    before = str(model.invoke(messages, max_tokens=24).content)
    scores = model.reply_logprobs(messages, REPLIES)
    assert scores == model.reply_logprobs(messages, REPLIES)  # the cached prompt is reused, to the same numbers
    assert np.allclose(scores, _by_full_decode(path), atol=1e-3)
    assert all(s < 0 for s in scores) and scores[2] < max(scores[:2])
    assert str(model.invoke(messages, max_tokens=24).content) == before  # the KV cache holds the prompt, not a reply
