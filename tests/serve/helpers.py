"""Importable pieces for the serve tests and the load benchmark: an instant fake chat model, a fake-server
responder that answers any output schema, a small seat flow with a function node, and a `microprompts serve`
subprocess runner. (Artifacts may reference this module's functions: allow `tests.serve.helpers`.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import BaseModel, Field

from microprompts import Example, Flow, FunctionNode, MicroPrompt
from tests.fakes.openai_server import Responder, last_user_message

REPO = Path(__file__).resolve().parents[2]
SLOW_MARKER = "SLOW"
HANG_MARKER = "HANG-UP"


def instance_from_schema(schema: dict[str, Any]) -> Any:
    """A small value that satisfies a JSON schema (enums: the first value; arrays: one item)."""
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"] or schema[key]
            return instance_from_schema(options[0])
    kind = schema.get("type")
    if kind == "string":
        return "economy_14A_window"
    if kind == "integer":
        return 1
    if kind == "number":
        return 0.5
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    if kind == "array":
        return [instance_from_schema(schema.get("items", {"type": "string"}))]
    if kind == "object" or "properties" in schema:
        return {k: instance_from_schema(v) for k, v in schema.get("properties", {}).items()}
    return "x"


def flow_reply(flow: Flow) -> str:
    """One JSON reply that satisfies every micro-prompt of `flow` (the union of their output fields)."""
    merged: dict[str, Any] = {}
    for node in flow.micro_prompts():
        merged.update(instance_from_schema(node.output_schema()))
    return json.dumps(merged)


class InstantChatModel(BaseChatModel):
    """A chat model that answers at once with a fixed reply (by default, one that fits a given flow)."""

    reply: str = "{}"
    delay: float = 0.0
    hang_marker: str = ""
    hang_seconds: float = 0.0

    @classmethod
    def for_flow(cls, flow: Flow, delay: float = 0.0, hang_seconds: float = 0.0) -> InstantChatModel:
        """A model whose reply fits every micro-prompt of `flow` (and that hangs `hang_seconds` on HANG_MARKER)."""
        return cls(
            reply=flow_reply(flow),
            delay=delay,
            hang_marker=HANG_MARKER if hang_seconds else "",
            hang_seconds=hang_seconds,
        )

    @property
    def _llm_type(self) -> str:
        return "instant-fake"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.delay:
            time.sleep(self.delay)
        if self.hang_marker and any(self.hang_marker in str(m.content) for m in messages[-1:]):
            time.sleep(self.hang_seconds)
        message = AIMessage(
            content=self.reply, usage_metadata={"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


def schema_responder(slow_seconds: float = 1.5) -> Responder:
    """A fake-OpenAI-server responder answering the request's output schema; slow when the input says SLOW."""

    def respond(request: dict[str, Any]) -> str:
        if SLOW_MARKER in last_user_message(request):
            time.sleep(slow_seconds)
        fmt = request.get("response_format") or {}
        schema = (fmt.get("json_schema") or {}).get("schema") or fmt.get("schema") or {}
        return json.dumps(instance_from_schema(schema))

    return respond


# --- a small "optimized" seat flow: a micro-prompt with examples and guidelines, then a function node -------
class Seats(BaseModel):
    """The recommendation."""

    recommended_seats: list[str] = Field(description="Seat ids from available_seats, best first.")


def summarize(state: dict[str, Any]) -> dict[str, Any]:
    """Function node: the first recommended seat and how many there are."""
    seats = list(state.get("recommended_seats") or [])
    return {"top_seat": seats[0] if seats else None, "n_seats": len(seats)}


def seat_flow() -> Flow:
    """recommend (micro-prompt) -> summarize (function node from this module)."""
    recommend = MicroPrompt(
        "recommend",
        task="Propose the top 3 seats for the traveler, given their preferences and the available seats.",
        guidelines=["Only recommend seats from available_seats.", "Best seat first."],
        inputs={"preferences": "The traveler's seating preferences.", "available_seats": (list[str], "Seat ids.")},
        output=Seats,
        examples=[
            Example(
                inputs={"preferences": "window", "available_seats": ["economy_14A_window"]},
                output={"recommended_seats": ["economy_14A_window"]},
            )
        ],
        max_tokens=128,
    )
    tidy = FunctionNode("summarize", summarize, reads=["recommended_seats"], writes=["top_seat", "n_seats"])
    return Flow("seats").then(recommend).then(tidy)


SEAT_INPUT = {"preferences": "window, near the front", "available_seats": ["economy_14A_window", "economy_14C_aisle"]}


# --- a real `microprompts serve` process ----------------------------------------------------------------------
@contextmanager
def served(
    args: list[str], log_path: Path, env: dict[str, str] | None = None, port: int | None = None, timeout: float = 60.0
) -> Iterator[str]:
    """Run `python -m microprompts.cli serve ARGS --port PORT` and yield its base URL once /ready says 200 (the
    model is loaded; /health answers before that, with status `loading`)."""
    from tests.fakes import free_port

    port = port or free_port()
    command = [sys.executable, "-m", "microprompts.cli", "serve", *args, "--port", str(port)]
    full_env = {**os.environ, **(env or {}), "PYTHONPATH": str(REPO)}
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=str(REPO))
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"serve exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
                try:
                    if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"serve did not come up in {timeout}s: {log_path.read_text()[-2000:]}")
                time.sleep(0.1)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
