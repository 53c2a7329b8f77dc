"""The compiled graph as a running agent: a FastAPI app with invoke, stream, batch, schema, graph, health, ready,
feedback and run lookup; only its own Host names (400), an optional bearer API key (401), JSON bodies only
(415), a body-size limit (413), a concurrency limit (503), a per-request deadline (504), and a JSON error body
for every failure. The models load in the background at start: `/health` answers at once (`status`: loading,
then ok), `/ready` and the run endpoints answer 503 with Retry-After until they are loaded.

    app = create_app(Flow.load("seats.opt.json"), model="local", store="runs.sqlite",
                     settings=ServeSettings(api_key=os.environ["MICROPROMPTS_API_KEY"]))
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
from langchain_core.language_models import BaseChatModel
from pydantic import ValidationError
from sse_starlette.sse import EventSourceResponse

from microprompts._version import VERSION
from microprompts.flows import Flow
from microprompts.flows.refs import load_flow_ref
from microprompts.models import ModelCaller, ModelLike
from microprompts.serve._guard import GuardMiddleware
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
from microprompts.serve._runner import Agent, RunOutcome, RunTicket
from microprompts.serve._schema import (
    BatchItemError,
    RunResponse,
    correction_data,
    feedback_model,
    output_model,
    request_body,
    request_models,
    schema_of,
)
from microprompts.serve._warm import LOADING, READY, RETRY_AFTER_S, Readiness, flow_models
from microprompts.serve.reload import reload_agent
from microprompts.serve.settings import MAX_RUNS_PAGE, ServeSettings
from microprompts.serve.store import RunStore, UnknownRunError, parse_cursor, register_secret

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in [
        (401, "Missing or wrong API key"),
        (413, "Body too large"),
        (415, "Body not sent as application/json"),
        (422, "Invalid body"),
        (503, "At the concurrency limit"),
        (504, "Past the deadline"),
    ]
}
_RUN_ERRORS = {
    **_ERRORS,
    500: {"model": ErrorBody, "description": "The flow failed"},
    502: {"model": ErrorBody, "description": "The model failed or gave an unparseable reply"},
}


def load_target(target: Flow | str | Path, allow_modules: Sequence[str] | None = None) -> Flow:
    """A Flow as given, or loaded from an artifact JSON / `path/file.py:name` / `module:name` reference.

    An artifact imports function nodes and routers only from `allow_modules` (None: the default list)."""
    if isinstance(target, Flow):
        return target
    return load_flow_ref(str(target), allow_modules)


def check_models(flow: Flow, model: ModelLike | None) -> list[BaseChatModel]:
    """Resolve every model the flow will use now, so a bad spec fails at startup, not on each request."""
    return flow_models(flow, model)


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
    settings: ServeSettings | None = None,
    allow_modules: Sequence[str] | None = None,
    caller: ModelCaller | None = None,
) -> FastAPI:
    """Build the agent's HTTP app around a flow (or an artifact / flow reference, loaded with `allow_modules`).

    `model` is the default model of every node that names none; `store` records every run (a RunStore or a
    path to one); `settings` holds the limits (see ServeSettings: body size, concurrency, batch size, deadline,
    API key, Host names). `caller` defaults to an uncached ModelCaller.
    """
    limits = settings or ServeSettings()
    if limits.api_key is not None:
        register_secret(limits.api_key)
    the_flow = load_target(flow, allow_modules)
    readiness = Readiness(check_models(the_flow, model))
    readiness.start()  # the server answers at once; runs wait for this (503 + Retry-After) until it is done
    run_store = RunStore(store) if isinstance(store, (str, Path)) else store
    agent = Agent(the_flow, model=model, caller=caller, store=run_store, artifact_hash=artifact_hash(the_flow, flow))
    inputs_model, invoke_model, batch_model = request_models(the_flow, limits.max_batch)
    feedback_body = feedback_model(the_flow)  # a reload keeps the inputs and outputs, so this model holds
    schemas = {
        "name": the_flow.name,
        "artifact_hash": agent.artifact_hash,
        "input": schema_of(inputs_model),
        "output": schema_of(output_model(the_flow)),
    }
    mermaid = the_flow.draw_mermaid()
    slots = Slots(limits.max_concurrency)
    limiter = anyio.CapacityLimiter(limits.max_concurrency)
    background: set[asyncio.Future[Any]] = set()

    app = FastAPI(
        title=f"{the_flow.name} agent",
        version=VERSION,
        default_response_class=SafeJSONResponse,
        description=f"The microprompts flow `{the_flow.name}` served as an agent "
        f"(artifact {agent.artifact_hash or 'none'}).",
    )
    app.state.agent, app.state.store, app.state.slots, app.state.settings = agent, run_store, slots, limits
    app.state.readiness = readiness
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=limits.max_body_bytes)
    app.add_middleware(
        GuardMiddleware, hosts=limits.host_names, api_key=limits.api_key, drain_bytes=limits.max_body_bytes
    )  # outermost: before the body is read

    def hold(work: asyncio.Future[Any]) -> asyncio.Future[Any]:
        """Keep the work alive until it ends, and give its slot back then (not before: the thread still runs)."""
        background.add(work)
        work.add_done_callback(background.discard)
        work.add_done_callback(lambda _: slots.release())
        return work

    def ready_or_503() -> None:
        """Refuse a run while the models load (503, Retry-After) or after they failed to (503)."""
        if readiness.state == LOADING:
            raise ApiError(
                503,
                "loading",
                f"the model is still loading; retry in {RETRY_AFTER_S} s (GET /ready says when it is ready)",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        if readiness.state != READY:
            raise ApiError(503, "model_unavailable", f"the model failed to load: {readiness.error}")

    def start(data: dict[str, Any], endpoint: str, ticket: RunTicket) -> asyncio.Future[RunOutcome]:
        return asyncio.ensure_future(
            anyio.to_thread.run_sync(agent.invoke, data, endpoint, None, ticket, limiter=limiter)
        )

    async def in_time(work: asyncio.Future[Any]) -> bool:
        """Wait for the work until the deadline; False when it is still running then (it goes on, shielded)."""
        try:
            await asyncio.wait_for(asyncio.shield(work), limits.timeout)
        except TimeoutError:
            return False
        return True

    @app.post("/invoke", response_model=RunResponse, responses=_RUN_ERRORS, openapi_extra=request_body(invoke_model))
    async def invoke(request: Request) -> SafeJSONResponse:
        """Run the flow on one input `{"input": {...}}`; answers `{"run_id", "output", "usage", "latency"}`."""
        body = parse_body(invoke_model, await read_json(request))
        data = body.input.model_dump(by_alias=True)
        ready_or_503()
        slots.take()
        ticket = RunTicket(timeout=limits.timeout)
        work = hold(start(data, "invoke", ticket))
        if not await in_time(work) and ticket.expire():
            await anyio.to_thread.run_sync(agent.record_timeout, ticket, data, "invoke")
            raise ApiError(504, "timeout", ticket.message(), run_id=ticket.run_id)
        outcome = await work  # done, or finishing: it settled its ticket first
        return SafeJSONResponse(outcome.body(), status_code=outcome.status)

    @app.post(
        "/stream",
        responses={**_ERRORS, 200: {"content": {"text/event-stream": {}}, "description": "Server-sent events"}},
        openapi_extra=request_body(invoke_model),
    )
    async def stream(request: Request) -> EventSourceResponse:
        """Run the flow on one input, as server-sent events: `start`, one `update` per node, then `end`
        (the same body as /invoke) or `error`."""
        body = parse_body(invoke_model, await read_json(request))
        data = body.input.model_dump(by_alias=True)
        ready_or_503()
        slots.take()
        run_id = str(uuid.uuid4())
        ticket = RunTicket(run_id, limits.timeout)
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def emit(event: str, payload: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (event, payload))

        work = hold(
            asyncio.ensure_future(
                anyio.to_thread.run_sync(agent.stream, data, emit, "stream", run_id, ticket, limiter=limiter)
            )
        )

        async def produce() -> None:
            try:
                if not await in_time(work) and ticket.expire():
                    await anyio.to_thread.run_sync(agent.record_timeout, ticket, data, "stream")
                    queue.put_nowait(
                        ("error", {"error": {"type": "timeout", "message": ticket.message(), "run_id": run_id}})
                    )
                    return
                outcome = await work
                queue.put_nowait(("end", outcome.body()) if outcome.ok else ("error", outcome.body()))
            except Exception as exc:  # noqa: BLE001 - the stream must end with an event, whatever happens
                queue.put_nowait(
                    ("error", {"error": {"type": "internal_error", "message": type(exc).__name__, "run_id": run_id}})
                )
            finally:
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
        in order: a run's body, or `{"index", "error"}` for an input that is invalid or whose run failed; 504
        when the whole batch is not done by the deadline."""
        items = parse_body(batch_model, await read_json(request)).inputs
        results: list[dict[str, Any]] = [{} for _ in items]
        runs: dict[int, tuple[RunTicket, dict[str, Any]]] = {}
        for index, raw in enumerate(items):
            try:
                runs[index] = (
                    RunTicket(timeout=limits.timeout),
                    inputs_model.model_validate(raw).model_dump(by_alias=True),
                )
            except ValidationError as exc:
                details = validation_details(exc, ("inputs", str(index)))
                error = {"type": "validation_error", "message": validation_message(details), "details": details}
                results[index] = BatchItemError(index=index, error=error).model_dump()
        ready_or_503()
        slots.take()
        works = {index: start(data, "batch", ticket) for index, (ticket, data) in runs.items()}
        everything = hold(asyncio.gather(*works.values()))
        if not await in_time(everything):
            late = [(ticket, data) for ticket, data in runs.values() if ticket.expire()]
            if late:
                await anyio.to_thread.run_sync(lambda: [agent.record_timeout(t, d, "batch") for t, d in late])
                raise ApiError(
                    504,
                    "timeout",
                    f"the batch did not finish within the {limits.timeout:g} s deadline "
                    f"({len(runs) - len(late)} of {len(runs)} runs done)",
                    run_ids=[ticket.run_id for ticket, _ in late],
                )
        for index, work in works.items():
            results[index] = {"index": index, **(await work).body()}
        return SafeJSONResponse({"results": results, "errors": sum(1 for r in results if "error" in r)})

    @app.get("/schema")
    async def schema() -> SafeJSONResponse:
        """The flow's input and output JSON schemas (and its name and artifact hash)."""
        return SafeJSONResponse(schemas)

    @app.get("/graph", response_class=PlainTextResponse)
    async def graph() -> PlainTextResponse:
        """The flow's graph as Mermaid text."""
        return PlainTextResponse(mermaid)

    @app.get("/health", responses={503: {"description": "The model failed to load"}})
    async def health() -> SafeJSONResponse:
        """Liveness and load, answered at once: `status` is `loading` while the model loads, then `ok` (200), or
        `failed` (503) when it could not load; runs in flight against the concurrency limit."""
        return SafeJSONResponse(
            {
                **readiness.body(),
                "flow": the_flow.name,
                "artifact_hash": agent.artifact_hash,
                "active": slots.active,
                "max_concurrency": slots.size,
                "store": run_store is not None,
            },
            status_code=503 if readiness.error is not None else 200,
        )

    @app.get("/ready", responses={503: {"description": "Still loading (Retry-After), or the load failed"}})
    async def ready() -> SafeJSONResponse:
        """Readiness (Kubernetes style): 200 once the model is loaded and runs are served; 503 before (with
        Retry-After) or when the load failed."""
        if readiness.state == READY:
            return SafeJSONResponse(readiness.body())
        headers = {"Retry-After": str(RETRY_AFTER_S)} if readiness.state == LOADING else None
        return SafeJSONResponse(readiness.body(), status_code=503, headers=headers)

    def need_store() -> RunStore:
        if run_store is None:
            raise ApiError(404, "no_store", "this server keeps no run store (start it with a store)")
        return run_store

    @app.post(
        "/feedback",
        responses={**_ERRORS, 404: {"model": ErrorBody, "description": "Unknown run"}},
        openapi_extra=request_body(feedback_body),
    )
    async def feedback(request: Request) -> SafeJSONResponse:
        """Attach `{"run_id", "score", "comment", "correction"}` to a stored run (score: a finite number, higher is
        better; correction: the output the run should have given, an object of the flow's output fields)."""
        body = parse_body(feedback_body, await read_json(request))
        store = need_store()
        fixed = correction_data(body)
        try:
            note = await anyio.to_thread.run_sync(store.add_feedback, body.run_id, body.score, body.comment, fixed)
        except UnknownRunError as exc:
            raise ApiError(404, "unknown_run", f"no run with id {body.run_id!r}") from exc
        return SafeJSONResponse({"ok": True, "feedback": note.model_dump()})

    @app.post("/reload", responses={**_ERRORS, 409: {"model": ErrorBody, "description": "Kept the old artifact"}})
    async def reload() -> SafeJSONResponse:
        """Load the served artifact file again and swap it in, runs in flight finishing on the old one; a broken
        artifact keeps the old one serving (409). Every try is recorded in the store."""
        target = None if isinstance(flow, Flow) else str(flow)
        allowed = list(allow_modules) if allow_modules is not None else None
        result = await anyio.to_thread.run_sync(reload_agent, agent, target, model, allowed)
        if not result.ok:
            raise ApiError(409, "reload_failed", f"kept the serving artifact: {result.error}")
        schemas["artifact_hash"] = result.artifact_hash
        return SafeJSONResponse(result.model_dump())

    @app.get("/runs", responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}})
    async def runs(
        limit: int = Query(20, ge=1, description=f"Runs per page (at most {MAX_RUNS_PAGE})"),
        before: str | None = Query(None, max_length=300, description="The previous page's `next`"),
        feedback_only: bool = False,
    ) -> SafeJSONResponse:
        """The stored runs, newest first, a page at a time (with `feedback_only`, those with feedback): small
        summaries without inputs, outputs or traces (`GET /runs/{run_id}` gives one whole), and `next`, the
        cursor of the following page (`before=`), null on the last."""
        store = need_store()
        size = min(limit, MAX_RUNS_PAGE)
        try:
            cursor = parse_cursor(before) if before else None
        except ValueError as exc:
            raise ApiError(422, "validation_error", f"before: {exc}") from exc
        page = await anyio.to_thread.run_sync(store.runs, size, feedback_only, cursor)
        after = f"{page[-1]['created']!r}:{page[-1]['run_id']}" if len(page) == size else None
        return SafeJSONResponse({"runs": page, "limit": size, "next": after})

    @app.get("/runs/{run_id}", responses={404: {"model": ErrorBody}})
    async def run(run_id: str) -> SafeJSONResponse:
        """One stored run: inputs, outputs, node traces, latency, tokens, artifact hash, error and feedback."""
        found = await anyio.to_thread.run_sync(need_store().get, run_id)
        if found is None:
            raise ApiError(404, "unknown_run", f"no run with id {run_id!r}")
        return SafeJSONResponse(found)

    return app
