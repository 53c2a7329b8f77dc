"""The `microprompts` command line: a thin shell over the public API; every error is one line and exit 2."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from typer._click.exceptions import (  # typer's vendored click: what it raises for usage mistakes
    ClickException,
    NoArgsIsHelpError,
)
from typer.exceptions import TyperException

from microprompts._version import VERSION
from microprompts.cli import finetune, monitor, optimize, run, serve, synthesize
from microprompts.cli.options import CliError

__all__ = ["CliError", "app", "main"]

app = typer.Typer(
    help="LangGraph flows of micro-prompts, optimized end to end.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
run.register(app)
optimize.register(app)
serve.register(app)
synthesize.register(app)
finetune.register(app)
monitor.register(app)

# Errors a user can cause, each printed as one line: bad options (typer's own), bad input, bad files, bad models.
_USER_ERRORS = (CliError, ValueError, KeyError, LookupError, OSError, ImportError, RuntimeError)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"microprompts {VERSION}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", callback=_show_version, is_eager=True)
    ] = False,
) -> None:
    """LangGraph flows of micro-prompts, optimized end to end."""


def _first_line(exc: BaseException) -> str:
    message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
    text = str(message).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app. Every failure prints `error: ...` on one line and exits 2 (a usage mistake, a bad
    file, a model that fails, a bug); Ctrl-C exits 130. `MICROPROMPTS_DEBUG=1` shows the traceback instead."""
    try:
        # Not standalone, so errors come here; typer then returns an Exit's code (130 for Ctrl-C).
        code = app(args=argv, prog_name="microprompts", standalone_mode=False)
        if code == 130:
            typer.echo("error: interrupted", err=True)
        return code if isinstance(code, int) else 0
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("error: interrupted", err=True)
        return 130
    except NoArgsIsHelpError:  # `microprompts` alone: typer has printed the help
        return 0
    except TyperException as exc:  # a usage mistake: unknown option, missing argument, bad value
        text = exc.format_message() if isinstance(exc, ClickException) else str(exc)
        command = " ".join(a for a in (argv if argv is not None else sys.argv[1:])[:1] if not a.startswith("-"))
        typer.echo(
            f"error: {text.strip().splitlines()[0]} (see: microprompts {command} --help)".replace("  ", " "), err=True
        )
        return 2
    except _USER_ERRORS as exc:
        if os.environ.get("MICROPROMPTS_DEBUG"):
            raise
        typer.echo(f"error: {_first_line(exc)}", err=True)
        return exc.exit_code if isinstance(exc, CliError) else 2
    except Exception as exc:
        if os.environ.get("MICROPROMPTS_DEBUG"):
            raise
        typer.echo(
            f"error: {type(exc).__name__}: {_first_line(exc)} (MICROPROMPTS_DEBUG=1 shows the traceback)", err=True
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
