"""Small I/O helpers shared by the rooms: atomic writes, and a guard that keeps secrets out of files."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)", re.IGNORECASE)


def _umask() -> int:
    """The process umask (read once: setting it back and forth is not thread-safe later)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Files are written with the mode any new file gets (0644 under the usual umask), like the SQLite files beside
# them: mkstemp alone would leave them 0600.
_FILE_MODE = 0o666 & ~_umask()


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a file so a reader sees the old content or the new, never a partial one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def secret_values() -> list[str]:
    """Values of environment variables whose names say they are secrets (8 characters or longer)."""
    return [v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= 8]


def secret_forms(value: str) -> set[str]:
    """A secret as it may appear in text: as it is, and as it appears inside a JSON string (a `"` or `\\` in it is
    escaped there, so a plain search for the value would miss it)."""
    return {value, json.dumps(value, ensure_ascii=False)[1:-1], json.dumps(value)[1:-1]}


def assert_no_secrets(text: str, what: str) -> None:
    """Refuse to write `text` if it contains the value of a secret environment variable (in any form above)."""
    for value in {form for secret in secret_values() for form in secret_forms(secret)}:
        if value in text:
            raise ValueError(f"refusing to write {what}: it contains the value of a secret environment variable")
