"""Files the package writes are atomic and get the mode any new file gets (0644 under umask 022), not mkstemp's 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from microprompts._io import atomic_write_text


def test_atomic_writes_get_the_usual_file_mode(tmp_path: Path) -> None:
    mask = os.umask(0o022)
    os.umask(mask)
    path = tmp_path / "best.json"
    atomic_write_text(path, "{}\n")
    assert path.read_text() == "{}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left behind
