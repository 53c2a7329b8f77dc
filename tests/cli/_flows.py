"""Flows the CLI tests name by reference."""

from __future__ import annotations

from typing import Any

from microprompts import Flow, FunctionNode


def explode(state: dict[str, Any]) -> dict[str, Any]:
    """A user's step with a bug."""
    return {"answer": 1 / 0}


def interrupt(state: dict[str, Any]) -> dict[str, Any]:
    """A step during which the user presses Ctrl-C."""
    raise KeyboardInterrupt


broken = Flow("broken").then(FunctionNode("explode", explode, reads=["question"], writes=["answer"]))
interrupted = Flow("interrupted").then(FunctionNode("wait", interrupt, reads=["question"], writes=["answer"]))
