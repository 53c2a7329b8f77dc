"""Artifacts written by an attacker: a function reference that walks out of an allowed module, or that names a
package planted in the working directory, is refused with one line before any of it runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from microprompts.flows import ArtifactError, Flow, content_hash
from microprompts.nodes import FunctionNode
from tests.nodes._refs_target import step

REPO = Path(__file__).resolve().parents[2]


def _artifact(tmp_path: Path, ref: str) -> Path:
    flow = Flow("hostile").then(FunctionNode("step", step, reads=["text"], writes=["answer"]))
    data: dict[str, Any] = flow.to_dict()
    data["nodes"][0]["fn"] = ref
    data["content_hash"] = content_hash(data)  # recomputed, as an attacker would
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env_path = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "microprompts.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": env_path, "MICROPROMPTS_CACHE": "off"},
    )


@pytest.mark.parametrize(
    "ref",
    [
        "tests.nodes._refs_target:os.system",
        "tests.nodes._refs_target:subprocess.run",
        "tests.nodes._refs_target:system",
    ],
)
def test_a_walk_out_of_an_allowed_module_is_refused(tmp_path: Path, ref: str) -> None:
    with pytest.raises(ArtifactError):
        Flow.load(str(_artifact(tmp_path, ref)), allow=["tests.nodes._refs_target"])


def test_run_refuses_a_shell_gadget_with_one_line(tmp_path: Path) -> None:
    mark = tmp_path / "mark"
    path = _artifact(tmp_path, "tests.nodes._refs_target:os.system")
    result = _run(
        [
            "run",
            str(path),
            "--input",
            json.dumps({"text": f"touch {mark}"}),
            "--allow-module",
            "tests.nodes._refs_target",
        ],
        cwd=REPO,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "reaches another module" in result.stderr
    assert not mark.exists()


def test_a_package_planted_in_the_working_directory_never_runs(tmp_path: Path) -> None:
    mark = tmp_path / "mark"
    planted = tmp_path / "examples"
    planted.mkdir()
    (planted / "__init__.py").write_text(f"open({str(mark)!r}, 'w').write('ran')\n", encoding="utf-8")
    (planted / "evil.py").write_text("def fn(state):\n    return {}\n", encoding="utf-8")
    path = _artifact(tmp_path, "examples.evil:fn")
    result = _run(["run", str(path), "--input", json.dumps({"text": "x"})], cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "not in the allowed modules" in result.stderr
    assert not mark.exists()
