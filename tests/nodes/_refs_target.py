"""A module an artifact is allowed to name: it defines a function node, a router and a state, and imports modules
(os, subprocess) and a function (os.system) that an artifact must never reach through it."""

from __future__ import annotations

import os
import subprocess
from os import system
from typing import Any, TypedDict

__all__ = ["State", "Steps", "os", "route", "step", "subprocess", "system"]


class State(TypedDict, total=False):
    """A state schema."""

    text: str


class Steps:
    """A class holding a step as a static method."""

    @staticmethod
    def shout(state: dict[str, Any]) -> dict[str, Any]:
        """Upper-case the text."""
        return {"text": str(state.get("text", "")).upper()}


def step(state: dict[str, Any]) -> dict[str, Any]:
    """A harmless function node."""
    return {"text": state.get("text", "")}


def route(state: dict[str, Any]) -> str:
    """A harmless router."""
    return "a"
