"""The `microprompts` command line: a thin shell over the public API; every error is one line and exit 2."""

from __future__ import annotations

import sys

import click
import typer

from microprompts.cli import optimize, run, serve
from microprompts.cli.options import CliError

__all__ = ["CliError", "app", "main"]

app = typer.Typer(help="LangGraph flows of micro-prompts, optimized end to end.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)
run.register(app)
optimize.register(app)
serve.register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app; known errors print `error: ...` on one line and exit 2."""
    try:
        app(args=argv, standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    except click.exceptions.Abort:
        typer.echo("error: aborted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return 2
    except (CliError, ValueError, KeyError, LookupError, OSError, ImportError, RuntimeError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        typer.echo(f"error: {str(message).splitlines()[0] if str(message) else type(exc).__name__}", err=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
