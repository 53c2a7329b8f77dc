"""The `serve` and `deploy` commands."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from typing import Annotated

import typer

from microprompts.cli.options import AllowOpt, CliError, ModelOpt, allow_list
from microprompts.serve.deploy import write_deployment


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    target: Annotated[str, typer.Argument(metavar="ARTIFACT|FLOW",
                                          help="An artifact JSON, path/file.py:name or module:name.")],
    host: Annotated[str, typer.Option(help="Address to bind; anything but loopback exposes the agent.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    model: ModelOpt = None,
    store: Annotated[Path, typer.Option(help="SQLite file recording every run and feedback.")] = Path("runs.sqlite"),
    no_store: Annotated[bool, typer.Option("--no-store", help="Record nothing.")] = False,
    allow_module: AllowOpt = None,
    max_concurrency: Annotated[int, typer.Option(min=1, help="Runs at once; more answer 503.")] = 8,
    max_body_bytes: Annotated[int, typer.Option(min=1, help="Largest request body; larger answer 413.")] = 1_000_000,
    max_batch: Annotated[int, typer.Option(min=1, help="Most inputs in one /batch request.")] = 64,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = True,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve a flow as an HTTP agent (FastAPI + uvicorn): /invoke, /stream, /batch, /schema, /graph, /health,
    /feedback, /runs/{id}; OpenAPI docs at /docs."""
    try:  # the serve extra is optional: FastAPI and uvicorn are imported only when serving
        import uvicorn

        from microprompts.serve.app import create_app
    except ImportError as exc:
        raise CliError(f"serving needs the serve extra ({exc.name} is missing): pip install 'microprompts[serve]'") \
            from exc
    if log_level not in {"debug", "info", "warning", "error"}:
        raise CliError(f"--log-level must be debug, info, warning or error, not {log_level!r}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(name)s: %(message)s")
    logging.getLogger("microprompts").setLevel(log_level.upper())
    app = create_app(target, model=model, store=None if no_store else store, max_body_bytes=max_body_bytes,
                     max_concurrency=max_concurrency, max_batch=max_batch, allow_modules=allow_list(allow_module))
    agent = app.state.agent
    if not _is_loopback(host):
        typer.echo(f"warning: binding {host}: the agent is reachable from other machines, with no authentication",
                   err=True)
    typer.echo(f"serving flow {agent.flow.name!r} ({agent.artifact_hash or 'no artifact hash'}) on "
               f"http://{host}:{port} (docs at /docs); runs recorded in {'nothing' if no_store else store}", err=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=access_log, timeout_graceful_shutdown=5)


def deploy(
    artifact: Annotated[str, typer.Argument(metavar="ARTIFACT", help="The artifact JSON to deploy.")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write langgraph.json and agent.py into.")],
    model: ModelOpt = None,
    allow_module: AllowOpt = None,
) -> None:
    """Write a directory LangGraph's server serves: langgraph.json, agent.py (the compiled graph), the artifact."""
    written = write_deployment(artifact, out, model=model, allow_modules=allow_list(allow_module))
    for path in written.values():
        typer.echo(str(path))
    typer.echo(f"serve it with: langgraph dev --config {out / 'langgraph.json'} (pip install 'langgraph-cli[inmem]')",
               err=True)


def register(app: typer.Typer) -> None:
    """Add `serve` and `deploy` to the `microprompts` command line."""
    app.command("serve")(serve)
    app.command("deploy")(deploy)
