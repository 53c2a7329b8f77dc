"""The peers report counts a task by either search, and names unfinished and n/a peers apart from failed ones."""

from __future__ import annotations

from types import ModuleType

import pytest

from benchmarks.peers.tasks import DATA
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


def seeded(system: str, seed: int, score: float | None, task_calls: int = 90) -> dict:
    status = "ok" if score is not None else "failed"
    return {**cell(system, status=status, score=score, task_calls=task_calls), "seed": seed}


def test_over_seeds_the_summary_compares_means_and_the_table_shows_each_seed() -> None:
    report = load_report()
    cells = {}
    for seed, (micro, peer) in enumerate([(0.50, 0.60), (0.60, 0.45), (0.55, 0.45)]):
        suffix = f"@s{seed}" if seed else ""
        cells[f"hotpot/microprompts-beam{suffix}"] = seeded("microprompts-beam", seed, micro, task_calls=80 + seed)
        cells[f"hotpot/dspy-gepa{suffix}"] = seeded("dspy-gepa", seed, peer)
    cells["hotpot/sammo"] = seeded("sammo", 0, 0.58)  # one seed only: taken as it is
    cells["hotpot/sammo@s1"] = seeded("sammo", 1, None)  # a failed seed does not pull the mean down
    (row,) = report.summary_rows({"cells": cells})
    assert row["micro_score"] == 0.55 and row["micro_calls"] == 81
    assert row["peer"] == "sammo" and row["peer_score"] == 0.58 and not row["micro_best"]
    merged = report.merged(cells)
    assert merged["hotpot/dspy-gepa"]["test_score"] == 0.5
    assert merged["hotpot/microprompts-beam"]["test_spread"] == 0.0408
    assert merged["hotpot/sammo"]["error"] == "1 of 2 seeds failed"
    text = report.markdown({"cells": cells})
    assert "| microprompts-beam | 0.550 ± 0.041 (seeds [0, 1, 2]: 0.500, 0.600, 0.550) | 81 |" in text
    assert "| sammo | 0.580 ± 0.000 (seeds [0, 1]: 0.580, failed) |" in text
    assert "seeds [0, 1, 2]: the same test rows" in text


def test_the_majority_label_floor_is_trains_most_common_label_scored_on_test() -> None:
    report = load_report()
    assert report.majority_label("hotpot", {}, [0]) is None  # no labels: no floor
    data = report.TASKS["implicatures"]["source"]
    if not (DATA / data).is_file():
        pytest.skip("../shared/data is absent: the implicatures rows are not there")
    # train (50 rows, seed 0) says "yes" most often; the 40 test rows are 22 "yes", 18 "no"
    assert report.majority_label("implicatures", {"train": 50, "dev": 20, "test": 40}, [0, 1, 2]) == 0.55
    sizes = {"train": 50, "dev": 20, "test": 40}
    baseline = {**cell("baseline", score=0.45), "task": "implicatures", "settings": sizes}
    assert "| implicatures | 0.450 | 0.550 |" in report.markdown({"cells": {"implicatures/baseline": baseline}})


def test_mean_gain_leaves_out_a_peer_cell_that_did_not_finish_and_gives_the_ratio_to_the_best_peer() -> None:
    report = load_report()
    cells = {}
    for task, base, beam, sammo in [("navigate", 0.40, 0.50, 0.45), ("seats", 0.10, 0.30, None)]:
        for system, score in [("baseline", base), ("microprompts-beam", beam), ("sammo", sammo)]:
            status = "n/a" if score is None else "ok"
            cells[f"{task}/{system}"] = {**cell(system, status=status, score=score), "task": task}
    gains = report.gains({"cells": cells})
    assert gains == {"microprompts-beam": {"navigate": 0.1, "seats": 0.2}, "sammo": {"navigate": 0.05}}
    text = "\n".join(report.gain_lines({"cells": cells}))
    assert "| microprompts-beam | +0.100 | +0.200 | +0.150 (2) |" in text
    assert "| sammo | +0.050 | - | +0.050 (1) |" in text
    assert "Best peer: sammo (+0.050)" in text and "microprompts-beam 3.00x" in text
