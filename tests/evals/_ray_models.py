"""Models for the Ray executor tests, importable by Ray's workers: one that kills its worker on its first call."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult

from microprompts.testing import SimulatedChatModel


class DieOnceModel(SimulatedChatModel):
    """The simulated model, except that the first call anywhere (no `marker` file yet) kills its process at once,
    like SIGKILL: no reply, no cleanup."""

    marker: str

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        marker = Path(self.marker)
        if not marker.exists():
            marker.write_text(str(os.getpid()), encoding="utf-8")
            os._exit(9)
        return super()._generate(messages, stop, run_manager, **kwargs)
