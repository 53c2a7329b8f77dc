"""The report of a small real run, opened in headless Chromium: no console error, the plots and table rows are in
the DOM after the scripts ran, the sorter works (an address hash sorts the table on load), nothing is wider than
the window, and a full-size screenshot is taken. Skipped when Chromium is not installed (``make test`` installs it)."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from microprompts.data import Row
from microprompts.evals import Score, exact_match
from microprompts.flows import Flow
from microprompts.nodes import MicroPrompt
from microprompts.optimizers import OptimizeResult
from tests.optimizers import engine_helpers as h
from tests.optimizers.report_helpers import small_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (Debian: apt-get install chromium; make test does it)"
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1280,2400",
]


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[OptimizeResult, Path]:
    run_dir = tmp_path_factory.mktemp("browser") / "run"
    return small_run(run_dir), run_dir / "report.html"


def test_the_report_runs_clean_and_sorts_in_chromium(report: tuple[OptimizeResult, Path], tmp_path: Path) -> None:
    result, page = report
    done = _chromium(tmp_path, "--enable-logging=stderr", "--v=0", "--dump-dom", f"{page.as_uri()}#sort=dev:desc")
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    assert not console, "\n".join(console)
    dom = done.stdout
    assert 'data-sort-ready="1"' in dom  # the script ran and wired the table
    assert 'data-fits-width="yes"' in dom  # no horizontal overflow at 1280 px
    assert dom.count("<svg") == 4
    body = dom[dom.index('id="candidates"') :]
    body = body[: body.index("</table>")]
    rows = re.findall(r"<tr class=\"[^\"]*\">(.*?)</tr>", body, flags=re.S)
    assert len(rows) == sum(1 for e in result.history if e["event"] == "candidate")
    assert re.search(r'data-key="dev"[^>]*aria-sort="descending"', body)
    # cells with a sort key: #, calls, minibatch, dev, tokens/row
    devs = [float(v) if v else float("-inf") for v in (re.findall(r'data-v="([^"]*)"', r)[3] for r in rows)]
    assert devs == sorted(devs, reverse=True) and devs[0] == pytest.approx(result.best_score)


def test_a_screenshot_of_the_report(report: tuple[OptimizeResult, Path], tmp_path: Path) -> None:
    _, page = report
    shot = tmp_path / "report.png"
    done = _chromium(tmp_path, f"--screenshot={shot}", page.as_uri())
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 2400) and len(data) > 50_000  # a page with plots, not a blank one


def test_long_unbroken_values_wrap_to_the_window(tmp_path: Path) -> None:
    long = "x" * 400  # in the prompt (the diff), the rows (failing rows) and the metric's feedback
    node = MicroPrompt(
        "classify_" + "n" * 60,
        task=f"Classify the headline. {long}",
        inputs={"headline": "A headline."},
        output=h.Topic,
    )
    dev = [
        Row(inputs={"headline": f"{long} {i}"}, output=h.answer({"headline": f"x {i}"}), id=f"{'r' * 80}{i}")
        for i in range(100, 110)
    ]

    def metric(example: Row, prediction: dict[str, Any]) -> Score:
        score = exact_match("label")(example, prediction)
        assert isinstance(score, Score)
        return Score(value=score.value, feedback=f"{score.feedback} {long}" if score.value < 1 else "")

    result = small_run(tmp_path / "run", flow=Flow("topic").then(node), metric=metric, dev=dev, calls=60)
    assert result.failures
    done = _chromium(tmp_path, "--dump-dom", (tmp_path / "run" / "report.html").as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'data-fits-width="yes"' in done.stdout
