"""The peers proxy gives every request the same server-side generation limit, whichever field a client uses."""

from __future__ import annotations

import json
from types import ModuleType

import pytest

from tests.benchmarks._peers import load_peers_module


def load_proxy() -> ModuleType:
    return load_peers_module("proxy")


@pytest.mark.parametrize(
    ("request_limits", "sent", "changed"),
    [
        ({"max_tokens": 100}, {"max_tokens": 100}, False),
        # langchain-openai's field alone: llama_cpp.server ignores it, so max_tokens is added.
        ({"max_completion_tokens": 100}, {"max_tokens": 100, "max_completion_tokens": 100}, True),
        ({}, {"max_tokens": 512}, True),
        ({"max_tokens": 2000}, {"max_tokens": 512}, True),
        ({"max_tokens": 600, "max_completion_tokens": 100}, {"max_tokens": 100, "max_completion_tokens": 100}, True),
    ],
)
def test_every_request_leaves_with_max_tokens_at_most_the_cap(request_limits: dict, sent: dict, changed: bool) -> None:
    body = json.dumps({"model": "qwen", "messages": [], **request_limits}).encode()
    out, was_changed = load_proxy().cap_max_tokens(body, 512)
    data = json.loads(out)
    assert {k: data[k] for k in ("max_tokens", "max_completion_tokens") if k in data} == sent
    assert was_changed is changed
