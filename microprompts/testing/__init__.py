"""Test doubles for chat models, to test flows offline: a scripted model and a deterministic task simulator.

``ScriptedChatModel`` answers from a script and records every call; ``SimulatedChatModel`` answers one task
right with a chance that grows with what the prompt offers (examples, key phrases, a data format, a reasoning
field, temperature 0), hashed from the inputs so every run gives the same answers. Both are LangChain chat
models, so they go wherever a model does: ``flow.compile(model=...)``, ``evaluate(..., model=...)``,
``optimize(..., model=...)``.
"""

from microprompts.testing.boosts import (
    contains,
    data_format,
    has_examples,
    min_examples,
    reasoning_on,
    temperature_zero,
)
from microprompts.testing.recording import Call, RecordingChatModel, SchemaRecordingCaller
from microprompts.testing.rendered import detect_format, parse_user
from microprompts.testing.scripted import Reply, ScriptedChatModel
from microprompts.testing.simulated import Boost, SimParams, SimTask, SimulatedChatModel, unit

__all__ = [
    "Boost",
    "Call",
    "RecordingChatModel",
    "Reply",
    "SchemaRecordingCaller",
    "ScriptedChatModel",
    "SimParams",
    "SimTask",
    "SimulatedChatModel",
    "contains",
    "data_format",
    "detect_format",
    "has_examples",
    "min_examples",
    "parse_user",
    "reasoning_on",
    "temperature_zero",
    "unit",
]
