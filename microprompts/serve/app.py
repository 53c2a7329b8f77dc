"""The compiled graph as a running agent: a FastAPI app with invoke, stream, batch, schema, graph, health,
feedback and run lookup; strict JSON bodies, a body-size limit (413), a concurrency limit (503), and a JSON
error body for every failure.

    app = create_app(Flow.load("seats.opt.json"), model="local", store="runs.sqlite")
    uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import ValidationError
from sse_starlette.sse import EventSourceResponse

from microprompts._version import VERSION
from microprompts.flows import Flow
from microprompts.flows.refs import load_flow_ref
from microprompts.models import ModelCaller, ModelLike, resolve_model
from microprompts.serve._http import (
    ApiError,
    BodyLimitMiddleware,
    ErrorBody,
    SafeJSONResponse,
    Slots,
    dump_json,
    install_error_handlers,
    parse_body,
    read_json,
    validation_details,
    validation_message,
)
from microprompts.serve._runner import Agent
from microprompts.serve._schema import (
    BatchItemError,
    FeedbackRequest,
    RunResponse,
    output_model,
    request_body,
    request_models,
    schema_of,
)
from microprompts.serve.store import RunStore, UnknownRunError

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in [(413, "Body too large"), (422, "Invalid body"), (503, "At the concurrency limit")]
}
_RUN_ERRORS = {**_ERRORS, 500: {"model": ErrorBody, "description": "The flow failed"},
               502: {"model": ErrorBody, "description": "The model failed or gave an unparseable reply"}}


def load_target(target: Flow | str | Path, allow_modules: Sequence[str] | None = None) -> Flow:
    """A Flow as given, or loaded from an artifact JSON / `path/file.py:name` / `module:name` reference.

    An artifact imports function nodes and routers only from `allow_modules` (None: the default list)."""
    if isinstance(target, Flow):
        return target
    return load_flow_ref(str(target), allow_modules)


def check_models(flow: Flow, model: ModelLike | None) -> None:
    """Resolve every model spec the flow will use now, so a bad spec fails at startup, not on each request."""
    specs: set[str] = {p.params.model for p in flow.micro_prompts() if p.params.model}
    if any(p.params.model is None for p in flow.micro_prompts()) and (model is None or isinstance(model, str)):
        specs.add(model or "local")
    for spec in sorted(specs):
        resolve_model(spec)


def artifact_hash(flow: Flow, target: Flow | str | Path) -> str | None:
    """The artifact file's own content hash when serving one (a reloaded flow can hash differently: an output
    class outside the allowed modules is rebuilt from its schema), else the flow's; None when it has none."""
    if not isinstance(target, Flow) and str(target).endswith(".json"):
        try:
            recorded = json.loads(Path(target).read_text(encoding="utf-8")).get("content_hash")
            if isinstance(recorded, str):
                return recorded
        except (OSError, ValueError, AttributeError):
            pass
    try:
        return flow.content_hash()
    except Exception:  # noqa: BLE001 - a flow with unimportable code runs, it just has no artifact hash
        return None


def create_app(  # noqa: C901 - one closure per route, sharing the agent, its slots and request models
    flow: Flow | str | Path,
    model: ModelLike | None = None,
    store: RunStore | str | Path | None = None,
    *,
    max_body_bytes: int = 1_000_000,
    max_concurrency: int = 8,
    max_batch: int = 64,
    allow_modules: Sequence[str] | None = None,
    caller: ModelCaller | None = None,
) -> FastAPI:
    """Build the agent's HTTP app around a flow (or an artifact / flow reference, loaded with `allow_modules`).

    `model` is the default model of every node that names none; `store` records every run (a RunStore or a
    path to one); at most `max_concurrency` runs at once (more answer 503), bodies over `max_body_bytes` answer
    413, a batch holds at most `max_batch` inputs. `caller` defaults to an uncached ModelCaller.
    """
    the_flow = load_target(flow, allow_modules)
    check_models(the_flow, model)
    run_store = RunStore(store) if isinstance(store, (str, Path)) else store
    agent = Agent(the_flow, model=model, caller=caller, store=run_store, artifact_hash=artifact_hash(the_flow, flow))
    inputs_model, invoke_model, batch_model = request_models(the_flow, max_batch)
    schemas = {"name": the_flow.name, "artifact_hash": agent.artifact_hash, "input": schema_of(inputs_model),
               "output": schema_of(output_model(the_flow))}
    mermaid = the_flow.draw_mermaid()
    slots = Slots(max_concurrency)
    limiter = anyio.CapacityLimiter(max_concurrency)
    background: set[asyncio.Task[None]] = set()

    app = FastAPI(
        title=f"{the_flow.name} agent", version=VERSION, default_response_class=SafeJSONResponse,
        description=f"The microprompts flow `{the_flow.name}` served as an agent "
                    f"(artifact {agent.artifact_hash or 'none'}).",
    )
    app.state.agent, app.state.store, app.state.slots = agent, run_store, slots
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)

    def validated(raw: Any) -> dict[str, Any]:
        return parse_body(inputs_model, raw).model_dump(by_alias=True)

    @app.post("/invoke", response_model=RunResponse, responses=_RUN_ERRORS, openapi_extra=request_body(invoke_model))
    async def invoke(request: Request) -> SafeJSONResponse:
        """Run the flow on one input `{"input": {...}}`; answers `{"run_id", "output", "usage", "latency"}`."""
        body = parse_body(invoke_model, await read_json(request))
        data = body.input.model_dump(by_alias=True)
        slots.take()
        try:
            outcome = await anyio.to_thread.run_sync(agent.invoke, data, limiter=limiter)
        finally:
            slots.release()
        return SafeJSONResponse(outcome.body(), status_code=outcome.status)

    @app.post("/stream", responses={**_ERRORS, 200: {"content": {"text/event-stream": {}},
                                                      "description": "Server-sent events"}},
              openapi_extra=request_body(invoke_model))
    async def stream(request: Request) -> EventSourceResponse:
        """Run the flow on one input, as server-sent events: `start`, one `update` per node, then `end`
        (the same body as /invoke) or `error`."""
        body = parse_body(invoke_model, await read_json(request))
        data = body.input.model_dump(by_alias=True)
        slots.take()
        run_id = str(uuid.uuid4())
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def emit(event: str, payload: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (event, payload))

        async def produce() -> None:
            try:
                outcome = await anyio.to_thread.run_sync(agent.stream, data, emit, "stream", run_id, limiter=limiter)
                queue.put_nowait(("end", outcome.body()) if outcome.ok else ("error", outcome.body()))
            except Exception as exc:  # noqa: BLE001 - the stream must end with an event, whatever happens
                queue.put_nowait(("error", {"error": {"type": "internal_error", "message": type(exc).__name__,
                                                      "run_id": run_id}}))
            finally:
                slots.release()
                queue.put_nowait(("done", None))

        task = asyncio.create_task(produce())  # runs to the end even if the client leaves
        background.add(task)
        task.add_done_callback(background.discard)

        async def events() -> AsyncIterator[dict[str, str]]:
            yield {"event": "start", "data": dump_json({"run_id": run_id}).decode()}
            while True:
                event, payload = await queue.get()
                if event == "done":
                    return
                yield {"event": event, "data": dump_json(payload).decode()}

        return EventSourceResponse(events(), ping=15)

    @app.post("/batch", responses=_ERRORS, openapi_extra=request_body(batch_model, inputs_model))
    async def batch(request: Request) -> SafeJSONResponse:
        """Run the flow on `{"inputs": [...]}`; answers `{"results": [...], "errors": N}`, one result per input
        in order: a run's body, or `{"index", "error"}` for an input that is invalid or whose run failed."""
        items = parse_body(batch_model, await read_json(request)).inputs
        results: list[dict[str, Any]] = [{} for _ in items]

        async def one(index: int, raw: Any) -> None:
            try:
                data = inputs_model.model_validate(raw).model_dump(by_alias=True)
            except ValidationError as exc:
                details = validation_details(exc, ("inputs", str(index)))
                error = {"type": "validation_error", "message": validation_message(details), "details": details}
                results[index] = BatchItemError(index=index, error=error).model_dump()
                return
            outcome = await anyio.to_thread.run_sync(agent.invoke, data, "batch", limiter=limiter)
            results[index] = {"index": index, **outcome.body()}

        slots.take()
        try:
            async with anyio.create_task_group() as group:
                for index, raw in enumerate(items):
                    group.start_soon(one, index, raw)
        finally:
            slots.release()
        return SafeJSONResponse({"results": results, "errors": sum(1 for r in results if "error" in r)})

    @app.get("/schema")
    async def schema() -> SafeJSONResponse:
        """The flow's input and output JSON schemas (and its name and artifact hash)."""
        return SafeJSONResponse(schemas)

    @app.get("/graph", response_class=PlainTextResponse)
    async def graph() -> PlainTextResponse:
        """The flow's graph as Mermaid text."""
        return PlainTextResponse(mermaid)

    @app.get("/health")
    async def health() -> SafeJSONResponse:
        """Liveness and load: runs in flight against the concurrency limit."""
        return SafeJSONResponse({"status": "ok", "flow": the_flow.name, "artifact_hash": agent.artifact_hash,
                                 "active": slots.active, "max_concurrency": slots.size,
                                 "store": run_store is not None})

    def need_store() -> RunStore:
        if run_store is None:
            raise ApiError(404, "no_store", "this server keeps no run store (start it with a store)")
        return run_store

    @app.post("/feedback", responses={**_ERRORS, 404: {"model": ErrorBody, "description": "Unknown run"}},
              openapi_extra=request_body(FeedbackRequest))
    async def feedback(request: Request) -> SafeJSONResponse:
        """Attach `{"run_id", "score", "comment"}` to a stored run (score: a finite number, higher is better)."""
        body = parse_body(FeedbackRequest, await read_json(request))
        store = need_store()
        try:
            note = await anyio.to_thread.run_sync(store.add_feedback, body.run_id, body.score, body.comment)
        except UnknownRunError as exc:
            raise ApiError(404, "unknown_run", f"no run with id {body.run_id!r}") from exc
        return SafeJSONResponse({"ok": True, "feedback": note.model_dump()})

    @app.get("/runs", responses={404: {"model": ErrorBody}})
    async def runs(limit: int = Query(20, ge=1, le=1000), feedback_only: bool = False) -> SafeJSONResponse:
        """The most recent stored runs, newest first (with `feedback_only`, those with feedback)."""
        store = need_store()
        return SafeJSONResponse({"runs": await anyio.to_thread.run_sync(store.runs, limit, feedback_only)})

    @app.get("/runs/{run_id}", responses={404: {"model": ErrorBody}})
    async def run(run_id: str) -> SafeJSONResponse:
        """One stored run: inputs, outputs, node traces, latency, tokens, artifact hash, error and feedback."""
        found = await anyio.to_thread.run_sync(need_store().get, run_id)
        if found is None:
            raise ApiError(404, "unknown_run", f"no run with id {run_id!r}")
        return SafeJSONResponse(found)

    return app
