"""What every command shares: the common options, the one-line error type, JSON arguments and the allow-list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from microprompts.nodes.function import DEFAULT_ALLOWED

__all__ = [
    "AllowOpt",
    "CliError",
    "Interrupted",
    "LimitOpt",
    "RunFailed",
    "MapOpt",
    "MetricOpt",
    "ModelOpt",
    "allow_list",
    "parse_json_arg",
]

# rich reads `[...]` as markup: the bracket is escaped so `--help` shows `[@URL]`.
ModelOpt = Annotated[
    str | None, typer.Option("--model", help="Model spec: local, local:PATH.gguf, openai:NAME\\[@URL].")
]
MetricOpt = Annotated[
    str,
    typer.Option(
        "--metric",
        help="exact_match[:FIELD], jaccard:FIELD[:VALID], f1:FIELD, llm_judge:RUBRIC_FILE[:MODEL], or path.py:fn / "
        "module:fn.",
    ),
]
MapOpt = Annotated[list[str] | None, typer.Option("--map", help="Field map SRC=inputs.X|output.X (repeatable).")]
LimitOpt = Annotated[int | None, typer.Option(min=1, help="Use only the first N rows.")]
AllowOpt = Annotated[list[str] | None, typer.Option("--allow-module", help="Module prefix artifacts may import.")]


class CliError(Exception):
    """An error to print as one line with exit code 2."""

    exit_code = 2


class RunFailed(CliError):
    """A run that started but in which every row failed: exit code 1, as a failed job (not a usage mistake)."""

    exit_code = 1


class Interrupted(CliError):
    """Ctrl-C, with what the user needs to know about what was kept (exit code 130)."""

    exit_code = 130


def parse_json_arg(value: str, what: str) -> Any:
    """A JSON argument, inline or `@file`."""
    try:
        text = Path(value[1:]).read_text(encoding="utf-8") if value.startswith("@") else value
        return json.loads(text)
    except OSError as exc:
        raise CliError(f"cannot read {what} file {value[1:]}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise CliError(f"{what} is not valid JSON: {exc.msg} at position {exc.pos}") from exc


def allow_list(extra: list[str] | None) -> list[str] | None:
    """The default allow-list plus the modules named with --allow-module (None: the default list)."""
    return list(DEFAULT_ALLOWED) + list(extra) if extra else None
