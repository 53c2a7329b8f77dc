"""The `serve` and `deploy` commands."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from microprompts.cli.options import AllowOpt, CliError, ModelOpt, allow_list
from microprompts.serve.deploy import write_deployment
from microprompts.serve.settings import (
    API_KEY_ENV,
    WILDCARD_BINDS,
    ServeSettings,
    default_store_path,
    key_from_env,
)
from microprompts.serve.settings import is_loopback as _is_loopback


def serve(
    target: Annotated[
        str, typer.Argument(metavar="ARTIFACT|FLOW", help="An artifact JSON, path/file.py:name or module:name.")
    ],
    host: Annotated[str, typer.Option(help="Address to bind; anything but loopback needs an API key.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    model: ModelOpt = None,
    store: Annotated[
        Path | None,
        typer.Option(
            show_default=False,
            help="SQLite file recording every run and feedback [default: runs.sqlite beside the artifact; for a "
            "flow reference, ./.microprompts/runs.sqlite].",
        ),
    ] = None,
    no_store: Annotated[bool, typer.Option("--no-store", help="Record nothing.")] = False,
    allow_module: AllowOpt = None,
    max_concurrency: Annotated[int, typer.Option(min=1, help="Runs at once; more answer 503.")] = 8,
    max_body_bytes: Annotated[int, typer.Option(min=1, help="Largest request body; larger answer 413.")] = 1_000_000,
    max_batch: Annotated[int, typer.Option(min=1, help="Most inputs in one /batch request.")] = 64,
    timeout: Annotated[
        float, typer.Option(min=0, help="Seconds a run may take; later answer 504 (0: no limit).")
    ] = 120.0,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            show_default=False,
            help=f"Bearer key every route but /health needs (prefer ${API_KEY_ENV}: a command line is visible to "
            "other users). Required to bind a non-loopback address.",
        ),
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option("--allowed-host", help="Host header name to accept besides the bound one (repeatable; '*': any)."),
    ] = None,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = True,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve a flow as an HTTP agent (FastAPI + uvicorn): /invoke, /stream, /batch, /schema, /graph, /health,
    /ready, /feedback, /runs, /runs/{run_id}; OpenAPI docs at /docs. The model loads in the background at start:
    /health answers at once (status loading, then ok); /ready and the run endpoints answer 503 + Retry-After until
    the model is loaded."""
    settings = ServeSettings(
        max_body_bytes=max_body_bytes,
        max_concurrency=max_concurrency,
        max_batch=max_batch,
        timeout=timeout or None,
        api_key=api_key or key_from_env(),
        host=host,
        allowed_hosts=tuple(allowed_host or ()),
    )
    refused = settings.bind_error()
    if refused:
        raise CliError(refused)
    try:  # the serve extra is optional: FastAPI and uvicorn are imported only when serving
        import uvicorn

        from microprompts.serve.app import create_app
    except ImportError as exc:
        raise CliError(
            f"serving needs the serve extra ({exc.name} is missing): pip install 'microprompts[serve]'"
        ) from exc
    if log_level not in {"debug", "info", "warning", "error"}:
        raise CliError(f"--log-level must be debug, info, warning or error, not {log_level!r}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(name)s: %(message)s")
    logging.getLogger("microprompts").setLevel(log_level.upper())
    store_path = None if no_store else (store or default_store_path(target)).resolve()
    app = create_app(
        target,
        model=model,
        store=store_path,
        settings=settings,
        allow_modules=allow_list(allow_module),
    )
    agent = app.state.agent
    if host.strip("[]") in WILDCARD_BINDS and not allowed_host:
        typer.echo(
            f"note: binding {host}: only Host names {', '.join(sorted(settings.host_names))} are answered; "
            "name the others with --allowed-host",
            err=True,
        )
    guard = "API key required" if settings.api_key else "no API key"
    if not _is_loopback(host):
        typer.echo(
            f"note: binding {host}: reachable from other machines (API key required); no TLS here, put a "
            "TLS proxy in front",
            err=True,
        )
    typer.echo(
        f"serving flow {agent.flow.name!r} ({agent.artifact_hash or 'no artifact hash'}) on "
        f"http://{host}:{port} (docs at /docs; {guard}); runs recorded in {store_path or 'nothing'}"
        + (
            "; the model is loading in the background: /health says loading, then ok; /ready and the run endpoints "
            "answer 503 until then"
            if app.state.readiness.state == "loading"
            else ""
        ),
        err=True,
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=access_log, timeout_graceful_shutdown=5)


def deploy(
    target: Annotated[
        str,
        typer.Argument(metavar="ARTIFACT|FLOW", help="An artifact JSON, path/file.py:name or module:name (as serve)."),
    ],
    out: Annotated[Path, typer.Option("--out", help="Directory to write langgraph.json and agent.py into.")],
    model: ModelOpt = None,
    allow_module: AllowOpt = None,
) -> None:
    """Write a directory LangGraph's server serves: langgraph.json, agent.py (the compiled graph), the artifact and
    a requirements.txt that installs this package (files 0644, the directory 0755)."""
    written = write_deployment(target, out, model=model, allow_modules=allow_list(allow_module))
    for path in written.values():
        typer.echo(str(path))
    typer.echo(
        f"serve it with: langgraph dev --config {out / 'langgraph.json'} (pip install 'langgraph-cli[inmem]')", err=True
    )


def register(app: typer.Typer) -> None:
    """Add `serve` and `deploy` to the `microprompts` command line."""
    app.command("serve")(serve)
    app.command("deploy")(deploy)
