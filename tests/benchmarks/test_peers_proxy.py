"""The peers proxy gives every request the same server-side generation limit, whichever field a client uses."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

PROXY = Path(__file__).resolve().parents[2] / "benchmarks" / "peers" / "proxy.py"


def load_proxy() -> ModuleType:
    spec = importlib.util.spec_from_file_location("peers_proxy", PROXY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
