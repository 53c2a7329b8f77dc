"""benchmarks/reply_formats.py: every micro-prompt of a flow switched to one reply format, and the table."""

from __future__ import annotations

from benchmarks.reply_formats import table, with_format
from microprompts.nodes import MicroPrompt
from tests.optimizers import engine_helpers as h


def test_with_format_switches_every_micro_prompt_and_nothing_else() -> None:
    flow = h.pipeline()
    marked = with_format(flow, "markers")
    prompts = [n for n in marked.nodes.values() if isinstance(n, MicroPrompt)]
    assert prompts and all(n.params.reply_format == "markers" for n in prompts)
    assert set(marked.nodes) == set(flow.nodes) and marked.edges == flow.edges
    assert all(n.params.reply_format == "json" for n in flow.micro_prompts())


def test_the_table_has_one_row_per_cell_with_its_most_given_answers() -> None:
    cell = {
        "task": "t",
        "format": "lines",
        "rows": 3,
        "score": 2 / 3,
        "errors": 0,
        "calls": 3,
        "completion_tokens_per_row": 3.0,
        "top_answers": {"no": 2, "yes": 1},
    }
    text = table([cell])
    assert text.splitlines()[-1] == "| t | lines | 3 | 0.667 | 0 | 3 | 3.0 | no 2, yes 1 |"
