"""The peers report counts a task by either search, and names unfinished and n/a peers apart from failed ones."""

from __future__ import annotations

from types import ModuleType

from tests.benchmarks._peers import load_peers_module


def load_report() -> ModuleType:
    return load_peers_module("report")


def cell(system: str, status: str = "ok", score: float | None = None, task_calls: int = 0) -> dict:
    return {"task": "hotpot", "system": system, "status": status, "test_score": score, "calls": {"task": task_calls}}


def test_summary_counts_either_search_and_names_unfinished_and_na_peers() -> None:
    report = load_report()
    store = {
        "cells": {
            "hotpot/baseline": cell("baseline", score=0.345),
            "hotpot/microprompts-beam": cell("microprompts-beam", score=0.40, task_calls=120),
            "hotpot/microprompts-evolution": cell("microprompts-evolution", score=0.36, task_calls=82),
            "hotpot/dspy-gepa": cell("dspy-gepa", score=0.15, task_calls=116),
            "hotpot/dspy-mipro": cell("dspy-mipro", status="unfinished", task_calls=24),
            "hotpot/sammo": cell("sammo", status="n/a"),
            "hotpot/textgrad": cell("textgrad", status="n/a"),
        }
    }
    (row,) = report.summary_rows(store)
    assert row["micro"] == "microprompts-beam" and not row["within_calls"]  # 120 calls, more than GEPA's 116
    assert row["counted"] and row["counted_by"] == "microprompts-evolution 0.360 at 82"
    assert (row["peers_failed"], row["peers_unfinished"], row["peers_na"]) == (0, 1, 2)
    text = report.markdown(store)
    assert "| 0/4 (1 unfinished, 2 n/a) |" in text
    assert "on **1 of 1** task(s)" in text
    assert "| dspy-mipro | unfinished |" in text
