"""The `nearest_examples` operator: switches a node the training rows label to per-row nearest examples, showing as
many as fit (never fewer than before), and leaves alone a node already switched or one the data does not label."""

from __future__ import annotations

import random

from microprompts.evals import exact_match
from microprompts.nodes import Example
from microprompts.nodes.render import render_messages
from microprompts.optimizers.candidate import Candidate
from microprompts.optimizers.mutators import MutationContext
from microprompts.optimizers.mutators.examples import (
    EXAMPLE_CHARS,
    NEAREST_POOL,
    ChooseExamples,
    NearestExamples,
    nearest_count,
)
from tests.optimizers import engine_helpers as h


def _ctx(count: int = 10) -> MutationContext:
    return MutationContext(train=h.rows(0, count), metric=exact_match(), rng=random.Random(0))


def test_the_switch_keeps_the_labelled_rows_and_shows_each_row_its_nearest() -> None:
    ((child, mutation),) = NearestExamples().propose(Candidate(h.topic_flow()), _ctx(), n=3)
    mp = child.nodes["classify"]
    assert mp.params.nearest_examples and mp.params.n_examples == 8 and len(mp.examples) == 10  # short rows: 8 fit
    assert mutation.after == {"examples": 10, "n_examples": 8, "nearest": True}
    mp = mp.with_params(n_examples=3)
    system = str(render_messages(mp, {"headline": "headline number 7"})[0].content)
    assert "headline number 7" in system  # the training row most like it is among its examples
    assert "headline number 7" not in str(render_messages(mp, {"headline": "headline number 2"})[0].content)
    # switched already: nothing more to propose
    assert NearestExamples().propose(Candidate(child), _ctx(), n=3) == []


def test_no_switch_where_the_data_does_not_label_the_node_or_the_pool_is_no_bigger_than_what_it_shows() -> None:
    assert NearestExamples().propose(Candidate(h.pipeline()), _ctx(), n=3) == []
    assert NearestExamples().propose(Candidate(h.topic_flow()), _ctx(3), n=3) == []
    ((child, _),) = NearestExamples().propose(Candidate(h.topic_flow()), _ctx(NEAREST_POOL + 8), n=1)
    assert len(child.nodes["classify"].examples) == NEAREST_POOL


def test_a_fixed_draw_on_a_node_choosing_per_row_turns_the_per_row_choice_off() -> None:
    ((switched, _),) = NearestExamples().propose(Candidate(h.topic_flow()), _ctx(), n=1)
    for child, _ in ChooseExamples().propose(Candidate(switched), _ctx(), n=2):
        mp = child.nodes["classify"]
        assert not mp.params.nearest_examples and len(mp.shown_examples()) == 8  # the draw keeps the count


def test_the_count_shown_is_the_most_that_fits() -> None:
    def pool(chars: int) -> list[Example]:
        return [Example(inputs={"text": "x" * chars + str(i)}, output={"label": "a"}) for i in range(10)]

    assert nearest_count(pool(10)) == 8
    assert nearest_count(pool(EXAMPLE_CHARS // 6)) == 5
    assert nearest_count(pool(EXAMPLE_CHARS // 4)) == 3
    assert nearest_count(pool(EXAMPLE_CHARS)) == 3  # never fewer than the default, even where none fits


def test_a_node_showing_more_keeps_its_count() -> None:
    ((switched, _),) = NearestExamples().propose(Candidate(h.topic_flow()), _ctx(), n=1)
    fixed = switched.nodes["classify"].with_params(nearest_examples=False, n_examples=9)
    ((child, _),) = NearestExamples().propose(Candidate(switched.replace_node(fixed)), _ctx(), n=1)
    assert child.nodes["classify"].params.n_examples == 9
