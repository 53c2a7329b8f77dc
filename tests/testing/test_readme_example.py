"""The README's "Testing your flows offline" example runs as written (its asserts are the checks)."""

from __future__ import annotations

import re
from pathlib import Path

from microprompts.testing import ScriptedChatModel

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    """The first python block of the README's "Testing your flows offline" section."""
    section = README.read_text(encoding="utf-8").split("## Testing your flows offline", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the section has no python example"
    return match.group(1)


def test_the_readme_example_runs_offline() -> None:
    code = readme_example()
    assert "ScriptedChatModel" in code and "Flow(" in code and "MicroPrompt(" in code
    namespace: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(code, str(README), "exec"), namespace)  # our own README's example
    model = namespace["model"]
    assert isinstance(model, ScriptedChatModel) and model.call_count == 1
