"""Makes ``docs/report.png``: a screenshot of the report of a small real optimization, taken in headless Chromium.

The run is offline and takes seconds: a 2-step news flow (summarize the headline, then classify it with its summary) on
the simulated model (``microprompts.testing``), whose answers improve with what a prompt offers (rows as JSON, a
reasoning field, worked examples, and a check-and-revise step after a node: a graph change); beam search over the
no-model mutators and the graph mutators, under a call budget too small for a perfect score.
``python docs/report_screenshot.py [--out docs/report.png] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from microprompts.data import Row  # noqa: E402
from microprompts.evals import exact_match  # noqa: E402
from microprompts.flows import Flow  # noqa: E402
from microprompts.nodes import MicroPrompt  # noqa: E402
from microprompts.optimizers import BeamSearch, Budget, OptimizeResult, optimize  # noqa: E402
from microprompts.optimizers.mutators.examples import ChooseExamples, ExampleCount  # noqa: E402
from microprompts.optimizers.mutators.graph import graph_mutators  # noqa: E402
from microprompts.optimizers.mutators.params import Temperature  # noqa: E402
from microprompts.optimizers.mutators.structure import (  # noqa: E402
    AddGuideline,
    DataFormat,
    DropSection,
    ToggleReasoning,
)
from microprompts.testing import (  # noqa: E402
    SimTask,
    SimulatedChatModel,
    contains,
    data_format,
    has_examples,
    reasoning_on,
)

LABELS = ["sports", "business", "world", "tech"]
TOPICS = {
    "sports": ["Late goal seals the cup final", "Sprinter breaks the indoor record", "Coach quits after the derby"],
    "business": ["Chip maker raises its outlook", "Airline cuts routes as fuel rises", "Bank fined over fees"],
    "world": ["Talks resume at the border summit", "Floods displace thousands upriver", "New envoy named to UN"],
    "tech": ["Startup ships an open model", "Phone update drains batteries", "Browser adds offline mode"],
}


class Summary(BaseModel):
    """What the first step writes."""

    summary: str = Field(description="The headline in a few plain words.")


class Topic(BaseModel):
    """What the second step writes."""

    label: Literal["sports", "business", "world", "tech"] = Field(description="The headline's section.")


def _label(text: str) -> str:
    number = re.search(r"#(\d+)", text)  # a garbled summary has lost it: the model guesses
    return LABELS[int(number.group(1)) % 4 if number else len(text) % 4]


def answer(inputs: dict[str, Any]) -> dict[str, Any]:
    """What the simulated model knows: a short summary and the right section (encoded in the row number)."""
    text = str(inputs.get("headline") or inputs.get("summary") or "")
    return {"summary": text, "label": _label(text)}


TASK = SimTask(
    "news",
    answer=answer,
    labels=LABELS,
    base=0.15,
    boosts=[data_format("json", 0.2), reasoning_on(0.2), has_examples(0.15), contains("check a draft", 0.2)],
)


def rows(start: int, count: int) -> list[Row]:
    """Headlines numbered so that the number decides the section."""
    out = []
    for i in range(start, start + count):
        label = LABELS[i % 4]
        text = f"{TOPICS[label][i % 3]} #{i}"
        out.append(Row(inputs={"headline": text}, output={"label": label}, id=f"h{i}"))
    return out


def news_flow() -> Flow:
    """Summarize, then classify the headline with its summary."""
    summarize = MicroPrompt(
        "summarize",
        task="Say what the headline is about in a few plain words.",
        inputs={"headline": "A news headline."},
        output=Summary,
    )
    classify = MicroPrompt(
        "classify",
        task="Pick the newspaper section for the story.",
        inputs={"headline": "A news headline.", "summary": "What the headline is about."},
        output=Topic,
    )
    return Flow("news_desk").then(summarize).then(classify)


def run(run_dir: Path, seed: int = 0) -> OptimizeResult:
    """The optimization whose report is shown."""
    mutators = [
        DataFormat(),
        ToggleReasoning(),
        ChooseExamples(),
        ExampleCount(),
        AddGuideline(),
        Temperature(),
        DropSection(),
        *graph_mutators(),
    ]
    return optimize(
        news_flow(),
        train=rows(0, 16),
        dev=rows(100, 16),
        test=rows(200, 24),
        metric=exact_match("label"),
        model=SimulatedChatModel(task=TASK, name="sim"),
        search=BeamSearch(beam_width=2, depth=5, mutations_per_candidate=4),
        mutators=mutators,
        seed=seed,
        minibatch=6,
        budget=Budget(calls=480),
        run_dir=run_dir,
        progress=False,
    )


def screenshot(page: Path, out: Path, profile: Path) -> None:
    """A 1280-pixel-wide screenshot of the page in headless Chromium."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("headless Chromium is needed (Debian: apt-get install chromium)")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--screenshot={out}",
        "--window-size=1280,2400",
    ]
    subprocess.run([chromium, *flags, page.as_uri()], check=True, capture_output=True, timeout=120)


def main() -> None:
    """Run, report, screenshot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "report.png")
    parser.add_argument("--keep", type=Path, default=None, help="keep the run directory here")
    parser.add_argument("--seed", type=int, default=0, help="the search's seed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.keep or Path(tmp) / "run"
        result = run(run_dir, args.seed)
        print(result.report())
        screenshot(run_dir / "report.html", args.out.resolve(), Path(tmp) / "profile")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
