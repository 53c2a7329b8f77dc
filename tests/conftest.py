"""Shared fixtures. Every test gets its own call cache: no test ever reads or writes ~/.cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import microprompts.nodes.runtime as _runtime


@pytest.fixture
def tmp_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point `MICROPROMPTS_CACHE` at a fresh SQLite file (outside the test's own `tmp_path`) and drop the
    process-wide default caller, so the next `default_caller()` opens that file."""
    path = tmp_path_factory.mktemp("cache") / "calls.sqlite"
    monkeypatch.setenv("MICROPROMPTS_CACHE", str(path))
    monkeypatch.setattr(_runtime, "_DEFAULT", None)
    yield path
    if _runtime._DEFAULT is not None and _runtime._DEFAULT.cache is not None:
        _runtime._DEFAULT.cache.close()
    _runtime._DEFAULT = None


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_cache: Path) -> Path:
    """Autouse: every test runs with `tmp_cache`."""
    return tmp_cache
