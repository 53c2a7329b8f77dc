"""Fixtures for the serve tests: the fake OpenAI server factory, the seat flow, and in-process clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from microprompts import Flow
from microprompts.serve.app import create_app
from microprompts.serve.settings import ServeSettings
from tests.fakes.fixtures import fake_openai  # noqa: F401 - a fixture
from tests.serve.helpers import InstantChatModel, seat_flow


@pytest.fixture
def flow() -> Flow:
    """The small seat flow (micro-prompt, then a function node)."""
    return seat_flow()


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """`make_client(flow=None, model=None, store=True, caller=None, base_url=..., **settings)`: an in-process
    client (Host 127.0.0.1 unless `base_url` says otherwise) of an app built with ServeSettings(**settings)."""
    clients: list[TestClient] = []

    def make(
        flow: Flow | None = None,
        model: Any = None,
        store: bool = True,
        caller: Any = None,
        base_url: str = "http://127.0.0.1",
        **settings: Any,
    ) -> TestClient:
        the_flow = flow or seat_flow()
        app = create_app(
            the_flow,
            model=model or InstantChatModel.for_flow(the_flow),
            store=tmp_path / f"runs{len(clients)}.sqlite" if store else None,
            settings=ServeSettings(**settings),
            caller=caller,
        )
        client = TestClient(app, raise_server_exceptions=False, base_url=base_url)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
