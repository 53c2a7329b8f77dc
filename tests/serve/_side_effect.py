"""A module whose import leaves a mark (a file named by $MICROPROMPTS_TEST_MARK): proof that code ran."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

if os.environ.get("MICROPROMPTS_TEST_MARK"):
    Path(os.environ["MICROPROMPTS_TEST_MARK"]).write_text("imported", encoding="utf-8")


def fn(state: dict[str, Any]) -> dict[str, Any]:
    """A harmless function node body."""
    return {}
