"""Sizes that keep the code easy to read: no library file over 400 lines, no public function or constructor with
more than 8 parameters (settings belong in a settings object)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "microprompts"
MAX_LINES = 400
MAX_PARAMETERS = 8
# A typer command declares its command-line options as parameters: the CLI's settings object is its signature.
COMMANDS = ROOT / "cli"


def _public_functions(path: Path) -> list[tuple[str, int, int]]:
    """(qualified name, line, parameter count without self/cls) of every public function and method."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: list[tuple[str, int, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef) and not child.name.startswith("_"):
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if child.name.startswith("_") and child.name != "__init__":
                    continue
                args = child.args
                names = [a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]]
                count = len([n for n in names if n not in ("self", "cls")])
                out.append((f"{prefix}{child.name}", child.lineno, count))

    visit(tree, "")
    return out


def test_no_library_file_is_over_400_lines() -> None:
    long = sorted(
        f"{p.relative_to(ROOT.parent)}: {n} lines"
        for p in ROOT.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    )
    assert not long, "\n".join(long)


def test_no_public_function_takes_more_than_8_parameters() -> None:
    wide = sorted(
        f"{p.relative_to(ROOT.parent)}:{line} {name} takes {count}"
        for p in ROOT.rglob("*.py")
        if COMMANDS not in p.parents
        for name, line, count in _public_functions(p)
        if count > MAX_PARAMETERS
    )
    assert not wide, "\n".join(wide)
