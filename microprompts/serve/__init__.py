"""The compiled graph as a running agent: an HTTP service (`create_app`), its run store, and `langgraph.json`
deployment. FastAPI is imported only when the app is built, so the CLI works without the serve extras."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from microprompts.serve.store import RunRecord, RunStore, UnknownRunError

if TYPE_CHECKING:  # for checkers only: at run time they load on first use (see __getattr__)
    from microprompts.serve.app import create_app
    from microprompts.serve.deploy import write_deployment

__all__ = ["RunRecord", "RunStore", "UnknownRunError", "create_app", "write_deployment"]


def __getattr__(name: str) -> Any:
    """`create_app` and `write_deployment`, imported on first use (FastAPI is an optional extra)."""
    if name == "create_app":
        from microprompts.serve.app import create_app

        return create_app
    if name == "write_deployment":
        from microprompts.serve.deploy import write_deployment

        return write_deployment
    raise AttributeError(f"module 'microprompts.serve' has no attribute {name!r}")
