"""The greedy-first grammar check: only greedy, penalty-free grammar calls take it; on the embedded model it gives the
same replies as llama-cpp-python's own sampler, including steps where the grammar rejects the top token."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from microprompts.models import greedy_grammar
from microprompts.models.greedy_grammar import GreedyGrammarSampler, with_fast_grammar


class StockLlama:
    """Stands in for llama_cpp.Llama's sampler factory."""

    def _init_sampler(self, **kwargs: Any) -> str:
        return "stock"


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(greedy_grammar, "GreedyGrammarSampler", lambda llama, grammar: f"fast:{grammar}")
    return with_fast_grammar(StockLlama)()


def test_greedy_grammar_calls_take_the_fast_sampler(fast: Any) -> None:
    assert fast._init_sampler(temp=0.0, grammar="g", repeat_penalty=1.0) == "fast:g"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"temp": 0.8, "grammar": "g"},
        {"temp": 0.0, "grammar": None},
        {"temp": 0.0, "grammar": "g", "repeat_penalty": 1.1},
        {"temp": 0.0, "grammar": "g", "presence_penalty": 0.5},
        {"temp": 0.0, "grammar": "g", "logits_processor": [lambda ids, logits: logits]},
    ],
)
def test_every_other_call_keeps_the_stock_sampler(fast: Any, kwargs: dict[str, Any]) -> None:
    assert fast._init_sampler(**kwargs) == "stock"


def test_the_subclass_is_made_once_per_base() -> None:
    assert with_fast_grammar(StockLlama) is with_fast_grammar(StockLlama)
    assert issubclass(with_fast_grammar(StockLlama), StockLlama)


SCHEMAS: list[dict[str, Any]] = [
    {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": ["refund", "shipping", "other"]}},
        "required": ["label"],
    },
    {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"type": "string"}}, "count": {"type": "integer"}},
        "required": ["items", "count"],
    },
]
PROMPTS = [
    "My parcel never arrived and I want my money back.",
    "List three fruits you like and how many you listed.",
    "Translate 'good morning' into French.",
]


@pytest.mark.integration
def test_the_embedded_model_gives_the_stock_samplers_replies(monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (pip install 'microprompts[local]')")
    from llama_cpp import Llama

    from microprompts.models import ModelSpecError, smollm2_path

    try:
        path = str(smollm2_path())
    except ModelSpecError as exc:
        pytest.skip(str(exc))
    full_passes: list[int] = []
    original = GreedyGrammarSampler._full_pass

    def counted(self: GreedyGrammarSampler, logits: Any) -> int:
        full_passes.append(1)
        return original(self, logits)

    monkeypatch.setattr(GreedyGrammarSampler, "_full_pass", counted)
    settings = {"model_path": path, "n_ctx": 1024, "n_threads": 1, "verbose": False, "seed": 0}
    stock, fast = Llama(**settings), with_fast_grammar(Llama)(**settings)
    try:
        for schema in SCHEMAS:
            for prompt in PROMPTS:
                args = {
                    "messages": [{"role": "system", "content": "Reply in JSON."}, {"role": "user", "content": prompt}],
                    "temperature": 0.0,
                    "max_tokens": 48,
                    "response_format": {"type": "json_object", "schema": schema},
                }
                want = stock.create_chat_completion(**args)["choices"][0]["message"]["content"]
                got = fast.create_chat_completion(**args)["choices"][0]["message"]["content"]
                assert got == want, (schema, prompt)
    finally:
        stock.close()
        fast.close()
    assert full_passes, "no step had its top token refused: the fallback went untested"
