"""Files the package writes are atomic, get the mode any new file gets (0644 under umask 022, not mkstemp's 0600),
and never hold a secret, even one that JSON escapes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from microprompts._io import assert_no_secrets, atomic_write_text
from microprompts.serve.store import REDACTED, scrub


def test_atomic_writes_get_the_usual_file_mode(tmp_path: Path) -> None:
    mask = os.umask(0o022)
    os.umask(mask)
    path = tmp_path / "best.json"
    atomic_write_text(path, "{}\n")
    assert path.read_text() == "{}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left behind


def test_a_secret_holding_quotes_or_backslashes_is_found_inside_json(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = 'sk-"quoted"\\back-0123'
    monkeypatch.setenv("SERVICE_API_KEY", secret)
    text = json.dumps({"note": f"key {secret}"})
    assert secret not in text  # JSON escaped it: a plain search misses it
    with pytest.raises(ValueError, match="secret"):
        assert_no_secrets(text, "an artifact")
    assert REDACTED in scrub(text) and "back-0123" not in scrub(text)
