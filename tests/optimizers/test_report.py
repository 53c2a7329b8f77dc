"""The run report page: every candidate in one sortable table with why it stopped, the plots (score over calls, the
Pareto front) and the graphs as inline SVG with axis values, a wrapping unified diff per node, the best candidate's
failing dev rows with the metric's feedback, nothing fetched from the network, and every run value escaped."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from langgraph.graph import END, START

from microprompts.data import Row
from microprompts.evals import EvalResult, RowResult, Score, exact_match
from microprompts.flows import Flow
from microprompts.models import Usage
from microprompts.nodes import MicroPrompt
from microprompts.optimizers import OptimizeResult
from microprompts.optimizers.outcome import failing_rows
from microprompts.optimizers.report._graph import layered_positions
from microprompts.optimizers.report._plots import spread_calls
from tests.optimizers import engine_helpers as h
from tests.optimizers.report_helpers import small_run


class _Page(HTMLParser):
    """Counts what the report is made of: elements by tag, rows per table id, text per table cell."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[str, int] = {}
        self.table: list[str] = []
        self.rows: dict[str, int] = {}
        self.in_body = 0
        self.scripts = 0
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1
        a = dict(attrs)
        if tag == "table":
            self.table.append(a.get("id") or a.get("class") or "")
        if tag == "tbody":
            self.in_body += 1
        if tag == "tr" and self.in_body and self.table:
            self.rows[self.table[-1]] = self.rows.get(self.table[-1], 0) + 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self.table:
            self.table.pop()
        if tag == "tbody":
            self.in_body -= 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    return parser


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[OptimizeResult, str]:
    run_dir = tmp_path_factory.mktemp("report") / "run"
    result = small_run(run_dir)
    return result, (run_dir / "report.html").read_text(encoding="utf-8")


def test_every_candidate_is_a_row_with_why_it_stopped(run: tuple[OptimizeResult, str]) -> None:
    result, page = run
    candidates = [e for e in result.history if e["event"] == "candidate"]
    statuses = {e["status"] for e in candidates}
    assert {"baseline", "promoted", "screened_out"} <= statuses  # the run is varied enough to test against
    parsed = _parse(page)
    assert parsed.rows["candidates"] == len(candidates)
    assert 'class="sortable"' in page and 'data-key="dev"' in page and 'data-type="num"' in page
    text = " ".join(parsed.text)
    assert "winner (best objective on dev)" in text and "baseline (the seed flow)" in text
    assert text.count("screened out:") == sum(1 for e in candidates if e["status"] == "screened_out")
    for e in candidates[1:]:
        assert e["mutation"]["address"] in page.replace("<wbr>", "")  # the address each one touched


def test_the_plots_and_graphs_are_inline_svg_with_labelled_axes(run: tuple[OptimizeResult, str]) -> None:
    _, page = run
    parsed = _parse(page)
    assert parsed.tags.get("svg", 0) == 4  # score over calls, Pareto front, graph before, graph after
    for label in ("task-model calls spent (cumulative)", "tokens per row (cost)", "dev score", "best dev score so far"):
        assert label in page
    progress = page[page.index('id="progress"') : page.index("</svg>", page.index('id="progress"'))]
    ticks = re.findall(r">(\d+(?:\.\d+)?)</text>", progress)
    assert len(ticks) >= 6  # axis values on both axes
    assert "screened out (minibatch score)" in progress and "promoted (full-dev score)" in progress
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page  # inlined, not a document in a document
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))  # two figures never share an id


def test_the_diff_is_unified_and_wraps(run: tuple[OptimizeResult, str]) -> None:
    result, page = run
    assert 'class="diff"' not in page  # the old side-by-side table is gone
    assert '<pre class="udiff">' in page
    assert re.search(r"pre\.udiff\{white-space:pre-wrap;overflow-wrap:anywhere", page)
    changed = [n for n in result.best.nodes if n in page]
    assert "label_it (seed)" in page and "label_it (best)" in page and changed
    assert '<span class="add">+params: ' in page and '<span class="del">-params: ' in page


def test_failing_dev_rows_of_the_best_candidate_carry_the_metric_feedback(run: tuple[OptimizeResult, str]) -> None:
    result, page = run
    assert result.best_score < 1.0 and result.failures
    assert all(f["score"] < 1.0 for f in result.failures)
    parsed = _parse(page)
    assert parsed.rows["rows"] >= len(result.failures)
    for failure in result.failures:
        assert failure["feedback"].startswith("expected") and failure["feedback"].replace("'", "&#x27;") in page
        assert failure["row"] in page


def test_nothing_is_fetched(run: tuple[OptimizeResult, str]) -> None:
    _, page = run
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)
    assert "<link" not in page and "@import" not in page and not re.search(r"url\((?!#)", page)  # url(#id): local
    assert _parse(page).tags.get("script") == 1  # the inline sorter, nothing else


def test_every_run_value_is_escaped(tmp_path: Path) -> None:
    evil = '"><script>alert(1)</script><img src=x onerror=alert(2)>$\\frac{a}{'
    node = MicroPrompt(
        f"classify{evil}",
        task=f"Classify the headline's topic. {evil}",
        inputs={"headline": f"A news headline. {evil}"},
        output=h.Topic,
    )
    flow = Flow(f"topic{evil}").then(node)
    dev = [
        Row(inputs={"headline": f"{evil} {i}"}, output=h.answer({"headline": f"x {i}"}), id=f"{evil}{i}")
        for i in range(100, 110)
    ]

    def metric(example: Row, prediction: dict[str, Any]) -> Score:
        score = exact_match("label")(example, prediction)
        assert isinstance(score, Score)
        return Score(value=score.value, feedback=f"{score.feedback} {evil}" if score.value < 1 else "")

    result = small_run(tmp_path, flow=flow, metric=metric, dev=dev, calls=40)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert result.failures and evil in result.failures[0]["feedback"]
    assert "<script>alert" not in page and "<img src=x" not in page and "onerror=alert(2)>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    parsed = _parse(page)
    assert parsed.tags.get("script") == 1 and "img" not in parsed.tags


def _row(i: int, score: float, error: str | None = None) -> RowResult:
    return RowResult(index=i, inputs={"i": i}, score=score, feedback=f"row {i}", error=error)


def test_failing_rows_show_errors_first_then_the_lowest_scores() -> None:
    rows = [_row(0, 1.0), _row(1, 0.5), _row(2, 0.0), _row(3, 0.0, "ValueError: bad reply"), _row(4, 0.2)]
    evaluation = EvalResult(score=0.34, n=5, errors=1, rows=rows, usage=Usage(), seconds=0.0)
    picked = failing_rows(evaluation, [f"dev:{i}" for i in range(5)], limit=3)
    assert [p["row"] for p in picked] == ["dev:3", "dev:2", "dev:4"]
    assert picked[0]["error"] == "ValueError: bad reply" and picked[1]["feedback"] == "row 2"


def test_candidates_journaled_together_spread_over_their_batch_calls() -> None:
    rows = [{"calls": c} for c in (10, 40, 40, 40, 70, 75, 75)]
    assert spread_calls(rows) == [10.0, 20.0, 30.0, 40.0, 70.0, 72.5, 75.0]


def test_graph_layers_run_from_start_to_end_with_cycles_and_strays() -> None:
    graph = nx.DiGraph([(START, "a"), ("a", "b"), ("b", "a"), ("b", END), ("stray", END)])
    pos = layered_positions(graph)
    assert pos[START][1] > pos["a"][1] > pos["b"][1] > pos[END][1]
    assert pos["stray"][1] > pos[END][1]  # unreachable: placed above END, not dropped


def test_a_run_that_only_scored_the_baseline_still_reports(tmp_path: Path) -> None:
    result = small_run(tmp_path, calls=10)  # the baseline's 10 dev rows spend it all
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert result.summary()["candidates"] == 1 and not result.improved
    parsed = _parse(page)
    assert parsed.tags.get("svg") == 4 and parsed.rows["candidates"] == 1
    assert "No node changed: the baseline is the best candidate found." in page
    assert result.failures and parsed.rows["rows"] == len(result.failures)
