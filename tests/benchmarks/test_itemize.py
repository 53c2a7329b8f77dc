"""benchmarks/itemize.py: each micro-prompt's whole-number field itemized, and the table."""

from __future__ import annotations

from benchmarks.itemize import itemized_flow, table
from benchmarks.tasks.optimize_tasks import TASKS


def test_itemized_flow_itemizes_the_count_and_leaves_label_tasks_alone() -> None:
    counting = itemized_flow(TASKS["object_counting"].flow)
    assert [mp.params.itemize for mp in counting.micro_prompts()] == ["answer"]
    assert TASKS["object_counting"].flow.micro_prompts()[0].params.itemize is None  # the seed is not changed
    yes_no = itemized_flow(TASKS["navigate"].flow)
    assert [mp.params.itemize for mp in yes_no.micro_prompts()] == [None]


def test_the_table_has_one_row_per_cell() -> None:
    cell = {
        "task": "t",
        "variant": "itemized",
        "rows": 2,
        "score": 0.5,
        "errors": 0,
        "calls": 2,
        "completion_tokens_per_row": 30.0,
        "seconds": 1.5,
        "top_answers": {"3": 1, "4": 1},
    }
    assert table([cell]).splitlines()[-1] == "| t | itemized | 2 | 0.500 | 0 | 2 | 30.0 | 1.5 | 3 1, 4 1 |"
