"""Pytest fixtures for the fakes; import them into a conftest.py (``from tests.fakes.fixtures import *``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.fakes.llama_server import llama_server, llama_server_unavailable_reason
from tests.fakes.openai_server import FakeOpenAIServer, FaultSchedule, Responder


@pytest.fixture
def fake_openai() -> Iterator[Callable[..., FakeOpenAIServer]]:
    """Factory fixture: ``fake_openai(responder, faults=..., **kw)`` starts a server stopped at teardown."""
    servers: list[FakeOpenAIServer] = []

    def make(
        responder: Responder | None = None, faults: FaultSchedule | None = None, **kwargs: Any
    ) -> FakeOpenAIServer:
        server = FakeOpenAIServer(responder, faults, **kwargs).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def llama_server_url() -> Iterator[str]:
    """Base URL of a real ``llama_cpp.server`` on SmolLM2 (session-wide); skips when unavailable."""
    reason = llama_server_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with llama_server() as base_url:
        yield base_url


__all__ = ["fake_openai", "llama_server_url"]
