"""The run report: a self-contained HTML page (plots of score over calls and the Pareto front, every candidate in a
sortable table, the graph before and after, a unified diff per node, failing dev rows) built from a run's result."""

from microprompts.optimizers.report._page import render_html
from microprompts.optimizers.report._plots import cost_of
from microprompts.optimizers.report._view import (
    RunView,
    candidate_rows,
    changed_nodes,
    fmt,
    lineage,
    mutation_text,
    prompt_text,
)

__all__ = [
    "RunView",
    "candidate_rows",
    "changed_nodes",
    "cost_of",
    "fmt",
    "lineage",
    "mutation_text",
    "prompt_text",
    "render_html",
]
