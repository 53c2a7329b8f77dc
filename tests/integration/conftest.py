"""Integration fixtures: one llama.cpp thread (see below) and a real `llama_cpp.server` on 127.0.0.1.

llama.cpp's worker threads spin while they wait; on a shared CI machine whose cores are busy, two of
them on two cores made a 50-token call take 20-50 s, where one thread takes about 1 s. These tests
check behaviour, not speed, so they run llama.cpp with one thread.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.llama_server import llama_server, llama_server_unavailable_reason


@pytest.fixture(scope="session", autouse=True)
def _one_llama_thread() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MICROPROMPTS_THREADS", "1")
        yield


@pytest.fixture(scope="session")
def llama_url() -> Iterator[str]:
    """Base URL (`http://127.0.0.1:PORT/v1`) of a real llama_cpp.server on SmolLM2; skips when unavailable."""
    reason = llama_server_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with llama_server(n_threads=1) as base_url:
        yield base_url
