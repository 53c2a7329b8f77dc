"""Running the compiled graph for the server: one run (or one streamed run) with its traces and usage,
recorded in the run store, and failures turned into API errors with a type and a one-line message. A run past
its deadline is recorded once, as timed out, whether it never started, hangs, or finishes late."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphRecursionError

from microprompts.flows import Flow, RouterError
from microprompts.models import ModelCaller, ModelCallError, ModelLike, Usage
from microprompts.nodes import NodeInputError, OutputParseError, Recorder
from microprompts.nodes.runtime import RECORDER_KEY
from microprompts.serve.store import RunRecord, RunStore, scrub

log = logging.getLogger("microprompts.serve")


@dataclass
class RunOutcome:
    """What one run produced: output and usage, or the error (status, type, message) that failed it."""

    run_id: str
    output: dict[str, Any] | None = None
    usage: Usage = field(default_factory=Usage)
    latency: float = 0.0
    status: int = 200
    error_type: str | None = None
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        """True when the run produced an output."""
        return self.error_type is None

    def body(self) -> dict[str, Any]:
        """The JSON answer: `{"run_id", "output", "usage", "latency"}` or `{"error": {...}}`."""
        if self.ok:
            return {
                "run_id": self.run_id,
                "output": self.output or {},
                "usage": self.usage.model_dump(),
                "latency": round(self.latency, 6),
            }
        return {"error": self.error()}

    def error(self) -> dict[str, Any]:
        """The error part of the body (with the run id, so feedback can still name a failed run)."""
        return {"type": self.error_type, "message": self.error_message, "run_id": self.run_id}


class RunTicket:
    """One run's deadline, shared by the request (which may give up and answer 504) and the worker thread (which
    may finish late): whichever settles it first decides whether the run counts as answered or timed out."""

    def __init__(self, run_id: str | None = None, timeout: float | None = None) -> None:
        self.run_id = run_id or str(uuid.uuid4())
        self.timeout = timeout
        self._lock = threading.Lock()
        self._state = "running"

    def expire(self) -> bool:
        """Mark the run timed out; False when its worker finished first (its answer stands)."""
        with self._lock:
            if self._state == "running":
                self._state = "expired"
            return self._state == "expired"

    def finish(self) -> bool:
        """Mark the run finished; False when its deadline passed first (it was answered 504)."""
        with self._lock:
            if self._state == "running":
                self._state = "finished"
            return self._state == "finished"

    @property
    def expired(self) -> bool:
        """True once the request gave up on this run."""
        with self._lock:
            return self._state == "expired"

    def message(self) -> str:
        """The one-line timeout message."""
        if self.timeout is None:
            return "the run was abandoned before it finished"
        return f"the run did not finish within the {self.timeout:g} s deadline"


def classify(exc: BaseException) -> tuple[int, str, str]:
    """(HTTP status, error type, one-line message) for an exception raised by a run."""
    text = scrub(f"{type(exc).__name__}: {exc}").replace("\n", " ")[:1000]
    if isinstance(exc, ModelCallError):
        return 502, "model_error", text
    if isinstance(exc, OutputParseError):
        return 502, "output_parse_error", text
    if isinstance(exc, (RouterError, NodeInputError, GraphRecursionError)):
        return 500, "flow_error", text
    return 500, "internal_error", text


class Agent:
    """A flow compiled once, run many times from the server's worker threads, each run recorded."""

    def __init__(
        self,
        flow: Flow,
        model: ModelLike | None = None,
        caller: ModelCaller | None = None,
        store: RunStore | None = None,
        artifact_hash: str | None = None,
        recursion_limit: int = 50,
    ) -> None:
        self.flow = flow
        self.caller = caller or ModelCaller(cache=None)
        self.graph = flow.compile(model=model, caller=self.caller)
        self.store = store
        self.artifact_hash = artifact_hash
        self.recursion_limit = recursion_limit

    def _config(self, recorder: Recorder, run_id: str) -> RunnableConfig:
        return RunnableConfig(
            configurable={RECORDER_KEY: recorder},
            recursion_limit=self.recursion_limit,
            run_id=uuid.UUID(run_id),
            run_name=self.flow.name,
        )

    def _output(self, state: dict[str, Any] | None) -> dict[str, Any]:
        state = state or {}
        return {k: state[k] for k in self.flow.output_keys if k in state}

    def invoke(
        self,
        inputs: dict[str, Any],
        endpoint: str = "invoke",
        run_id: str | None = None,
        ticket: RunTicket | None = None,
    ) -> RunOutcome:
        """Run the graph on one validated input; never raises for a failing run (the outcome says why)."""
        return self._run(
            inputs, endpoint, lambda config: self.graph.invoke(inputs, config=config), ticket or RunTicket(run_id)
        )

    def stream(
        self,
        inputs: dict[str, Any],
        emit: Callable[[str, dict[str, Any]], None],
        endpoint: str = "stream",
        run_id: str | None = None,
        ticket: RunTicket | None = None,
    ) -> RunOutcome:
        """Run the graph, calling `emit("update", {"node", "update"})` for each node's update as it lands."""

        def go(config: RunnableConfig) -> dict[str, Any] | None:
            final: dict[str, Any] | None = None
            for mode, chunk in self.graph.stream(inputs, config=config, stream_mode=["updates", "values"]):
                if not isinstance(chunk, dict):
                    continue
                if mode == "values":
                    final = chunk
                    continue
                for node, update in chunk.items():
                    emit("update", {"node": node, "update": update})
            return final

        return self._run(inputs, endpoint, go, ticket or RunTicket(run_id))

    def timed_out(self, ticket: RunTicket, latency: float | None = None) -> RunOutcome:
        """The outcome of a run past its deadline (504)."""
        return RunOutcome(
            run_id=ticket.run_id,
            latency=(ticket.timeout or 0.0) if latency is None else latency,
            status=504,
            error_type="timeout",
            error_message=ticket.message(),
        )

    def record_timeout(self, ticket: RunTicket, inputs: dict[str, Any], endpoint: str) -> None:
        """Record a run the request gave up on, unless its worker recorded it already (its record has more)."""
        self._record(self.timed_out(ticket), inputs, Recorder(), endpoint, replace=False)

    def _run(
        self,
        inputs: dict[str, Any],
        endpoint: str,
        execute: Callable[[RunnableConfig], dict[str, Any] | None],
        ticket: RunTicket,
    ) -> RunOutcome:
        run_id = ticket.run_id
        recorder = Recorder()
        if ticket.expired:  # the deadline passed while it waited for a worker: do not start it
            outcome = self.timed_out(ticket)
            self._record(outcome, inputs, recorder, endpoint)
            return outcome
        outcome = RunOutcome(run_id=run_id)
        started = time.perf_counter()
        try:
            outcome.output = self._output(execute(self._config(recorder, run_id)))
        except Exception as exc:  # noqa: BLE001 - a failing run is an answer, not a crash
            outcome.status, outcome.error_type, outcome.error_message = classify(exc)
            log.warning("run %s failed (%s): %s", run_id, outcome.error_type, outcome.error_message)
        outcome.latency = time.perf_counter() - started
        outcome.usage = recorder.meter.snapshot()
        if not ticket.finish():  # answered 504 already: recorded as timed out, with what it did
            late = outcome.latency
            outcome.output, outcome.status, outcome.error_type = None, 504, "timeout"
            outcome.error_message = f"{ticket.message()} (it ended after {late:.1f} s)"
            log.warning("run %s ended after its deadline (%.1f s)", run_id, late)
        self._record(outcome, inputs, recorder, endpoint)
        return outcome

    def _record(
        self, outcome: RunOutcome, inputs: dict[str, Any], recorder: Recorder, endpoint: str, replace: bool = True
    ) -> None:
        if self.store is None:
            return
        usage = outcome.usage
        record = RunRecord(
            run_id=outcome.run_id,
            flow=self.flow.name,
            artifact_hash=self.artifact_hash,
            endpoint=endpoint,
            inputs=inputs,
            outputs=outcome.output,
            traces=[t.model_dump() for t in recorder.traces],
            latency=outcome.latency,
            calls=usage.calls,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            error=None if outcome.ok else f"{outcome.error_type}: {outcome.error_message}",
        )
        try:
            self.store.record(record, replace=replace)
        except Exception as exc:  # noqa: BLE001 - losing a record must not lose the answer
            log.error("could not record run %s: %s", outcome.run_id, scrub(f"{type(exc).__name__}: {exc}"))
