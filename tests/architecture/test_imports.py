"""The package's shape, checked from its source: imports point one way between rooms, no file imports a file that
imports it back, no function-level import hides a cycle, and no sub-package imports the CLI or the package root."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[2] / "microprompts"

# The rooms each room may import (besides itself and the top-level private helpers `_io`, `_version`):
# cli -> optimizers -> evals -> flows -> nodes -> models, `data` under `evals`, `serve` beside the optimizer.
ALLOWED: dict[str, set[str]] = {
    "models": set(),
    "nodes": {"models"},
    "flows": {"nodes", "models"},
    "data": set(),
    "evals": {"flows", "nodes", "models", "data"},
    "optimizers": {"evals", "flows", "nodes", "models", "data"},
    "serve": {"flows", "nodes", "models"},
    "testing": {"nodes", "models"},
    "cli": {"optimizers", "evals", "flows", "nodes", "models", "data", "serve"},
}
HELPERS = {"_io", "_version"}
# Function-level imports allowed, each with its reason: the modules that need the optional serve extra.
LATE_IMPORTS = {
    ("microprompts.serve", "microprompts.serve.app"): "FastAPI is an optional extra (pip install microprompts[serve])",
    ("microprompts.serve", "microprompts.serve.deploy"): "loaded with create_app, on first use",
    ("microprompts.cli.serve", "microprompts.serve.app"): "FastAPI is an optional extra",
    ("microprompts.evals.executors", "microprompts.evals._ray"): "Ray is an optional extra (microprompts[ray])",
    ("microprompts.models.spec", "microprompts.models.torch_model"): "torch is an optional extra (microprompts[soft])",
    ("microprompts.optimizers.optimize", "microprompts.optimizers.mutators.soft"): "the soft_prompt operator, for an "
    "hf: task model only (microprompts[soft])",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(importer: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The package modules an import statement loads (a `from pkg import sub` names the submodule)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.startswith("microprompts")]
    base = node.module or ""
    if node.level:
        package = importer.split(".")
        if not MODULES[importer].name == "__init__.py":
            package = package[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join(package + ([node.module] if node.module else []))
    if not base.startswith("microprompts"):
        return []
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]


def _imports() -> list[tuple[str, str, int, bool]]:
    """(importer, imported, line, at module level) for every import of a package module."""
    out = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = set(map(id, tree.body))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                out.extend((name, target, node.lineno, id(node) in top) for target in _resolve(name, node))
    return out


IMPORTS = _imports()


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_walk_sees_the_package() -> None:
    assert {"microprompts.flows.flow", "microprompts.evals.metrics", "microprompts.cli"} <= set(MODULES)
    assert any(a == "microprompts.optimizers.sampling" and b.startswith("microprompts.evals") for a, b, *_ in IMPORTS)


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_rooms_import_only_rooms_below_them(room: str) -> None:
    wrong = sorted(
        f"{a}:{line} imports {b}"
        for a, b, line, _ in IMPORTS
        if _room(a) == room and _room(b) not in ALLOWED[room] | HELPERS | {room}
    )
    assert not wrong, "\n".join(wrong)


def test_no_sub_package_imports_the_cli_or_the_package_root() -> None:
    wrong = sorted(
        f"{a}:{line} imports {b}"
        for a, b, line, _ in IMPORTS
        if _room(a) not in ("", "cli") and (b == "microprompts" or _room(b) == "cli")
    )
    assert not wrong, "\n".join(wrong)


def test_helpers_import_nothing_from_the_package() -> None:
    wrong = [f"{a} imports {b}" for a, b, *_ in IMPORTS if _room(a) in HELPERS]
    assert not wrong


def test_no_function_level_import_of_a_package_module() -> None:
    """A function-level import is how a cycle hides; optional third-party packages may still be imported late."""
    wrong = sorted(
        f"{a}:{line} imports {b} inside a function or block"
        for a, b, line, top in IMPORTS
        if not top and (a, b) not in LATE_IMPORTS
    )
    assert not wrong, "\n".join(wrong)


def test_no_file_imports_a_file_that_imports_it_back() -> None:
    graph = nx.DiGraph()
    graph.add_edges_from((a, b) for a, b, *_ in IMPORTS if a != b)
    # A package's __init__ re-exports its modules; a module importing a sibling by its full path is not a cycle
    # through the __init__, so only module -> module edges are checked.
    modules = graph.subgraph(n for n in graph if not MODULES.get(n, Path("x")).name == "__init__.py")
    cycles = list(nx.simple_cycles(modules))
    assert not cycles, "\n".join(" -> ".join(c + c[:1]) for c in cycles[:10])


# The optional OpenTelemetry extra: only its own module imports it (at its top, with an error naming the extra), and
# nothing in the package imports that module, so `import microprompts` never needs the extra.
OTEL_MODULE = "microprompts.models.otel"


def _third_party_importers(package: str) -> set[str]:
    """The package modules that import `package` (or a module under it) anywhere in their source."""
    out = set()
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            if any(n == package or n.startswith(package + ".") for n in names):
                out.add(name)
    return out


def test_only_the_otel_module_imports_opentelemetry_and_nothing_imports_it() -> None:
    assert _third_party_importers("opentelemetry") <= {OTEL_MODULE}
    importers = sorted(f"{a}:{line}" for a, b, line, _ in IMPORTS if b == OTEL_MODULE)
    assert not importers, "the otel module is imported explicitly by users only: " + ", ".join(importers)
