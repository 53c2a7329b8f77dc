"""Load a module of the stdlib-only peers harness (``benchmarks/peers/``, not a package) by its file name."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

PEERS = Path(__file__).resolve().parents[2] / "benchmarks" / "peers"


def load_peers_module(name: str) -> ModuleType:
    """Import ``benchmarks/peers/<name>.py`` afresh, as ``peers_<name>``."""
    spec = importlib.util.spec_from_file_location(f"peers_{name}", PEERS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
