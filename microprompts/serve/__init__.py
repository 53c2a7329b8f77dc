"""The compiled graph as a running agent: an HTTP service (`create_app`), its run store, and `langgraph.json`
deployment. FastAPI is imported only when the app is built, so the CLI works without the serve extras."""

from __future__ import annotations

from typing import Any

from microprompts.serve.store import RunRecord, RunStore, UnknownRunError

__all__ = ["RunRecord", "RunStore", "UnknownRunError", "create_app", "write_deployment"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from microprompts.serve.app import create_app

        return create_app
    if name == "write_deployment":
        from microprompts.serve.deploy import write_deployment

        return write_deployment
    raise AttributeError(f"module 'microprompts.serve' has no attribute {name!r}")
