"""The search's budget arithmetic: what a child's row costs in new task-model calls, which children the calls left can
screen while one of them can still reach dev, and whether a screened child can finish dev, all after the calls kept
back (`reserve`) for re-scoring the finalists on held-out rows at the end. Work that does not fit is
journaled as ``skipped`` (DESIGN.md: "No work the budget cannot finish")."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import networkx as nx

from microprompts.nodes import MicroPrompt
from microprompts.optimizers.budget import BudgetTracker
from microprompts.optimizers.candidate import Candidate, Pending, Record
from microprompts.optimizers.journal import Journal, SkippedEvent

__all__ = ["CallPlanner"]


class CallPlanner:
    """Decides what the task-model calls left can finish on `dev_size` dev rows, journaling what it passes over."""

    def __init__(self, tracker: BudgetTracker, journal: Journal, dev_size: int) -> None:
        self.tracker, self.journal, self.dev_size = tracker, journal, dev_size
        self.reserve = 0  # task-model calls kept back for the final re-score of the finalists on held-out rows

    def shortfall(self, calls: int, what: str) -> str | None:
        """Why `calls` new task-model calls (plus the reserve) cannot be spent now, or None when they can."""
        return self.tracker.shortfall(calls + self.reserve, self._kept(what))

    def _kept(self, what: str) -> str:
        return f"{what}, with {self.reserve} kept for the held-out re-score" if self.reserve else what

    @staticmethod
    def row_calls(candidate: Candidate, touched: Sequence[str]) -> int:
        """The new calls a row of this child takes, at least one: each micro-prompt it changed, and each one that
        reads their outputs (directly or further down), is asked anew once per sample; the rest repeat the
        parent's requests, which are free. Downstream nodes count because a changed output changes their prompt
        on most rows; repair turns do not (promotion then goes by what the minibatch charged)."""
        names = {address.split(".", 1)[0] for address in touched}
        readers = candidate.flow.dependencies()
        reached = set(names).union(*(nx.descendants(readers, n) for n in names if n in readers))
        nodes = candidate.flow.nodes
        return max(1, sum(node.params.samples for name in reached if isinstance(node := nodes.get(name), MicroPrompt)))

    def screening_calls(self, records: Sequence[Record], rows: int) -> int:
        """The new task-model calls that scoring `records` on `rows` more rows takes (their `row_calls` each)."""
        return rows * sum(self.row_calls(r.candidate, r.touched) for r in records)

    def leaves_room(self, calls: int) -> bool:
        """Whether spending `calls` new task-model calls now still leaves what scoring one child on all of dev takes
        (a call a row at least) and the reserve: work after which no child could be scored is not started."""
        return self.tracker.shortfall(calls + self.dev_size + self.reserve, "") is None

    def can_finish(self, record: Record, done: int, charged: int) -> bool:
        """Whether the calls left can score a screened child on the dev rows past its `done` minibatch rows. The
        cost is what its minibatch `charged`, scaled to those rows (so repair turns and the downstream nodes a change
        reaches count), or its `row_calls` a row when the minibatch charged nothing new. A child that cannot finish
        is journaled as skipped, and a cheaper one after it may still be promoted."""
        rest = self.dev_size - done
        if rest <= 0:
            return True
        need = -(-charged * rest // done) if charged else rest * self.row_calls(record.candidate, record.touched)
        return self.fits(
            record.candidate, record.operator, need, f"calls that scoring it on {rest} more dev rows takes"
        )

    def fits(self, candidate: Candidate, operator: str | None, calls: int, what: str) -> bool:
        """Whether `calls` new task-model calls are left for `what`; if not, the candidate is journaled as skipped."""
        reason = self.shortfall(calls, what)
        if reason is not None:
            self.skip(candidate, operator, reason)
        return reason is None

    def require_dev(self, done: int = 0, per_row: int = 1) -> None:
        """Raise BudgetExceeded, spending nothing, when the calls left cannot score a candidate on the dev rows it
        has not run (`done` ran already; a row costs at least `per_row` new calls): it could never be chosen."""
        rows = self.dev_size - done
        if rows > 0:
            self.tracker.require(
                rows * per_row + self.reserve,
                self._kept(f"calls that scoring a candidate on {rows} more dev rows takes"),
            )

    def affordable(
        self, pending: Sequence[Pending], rows: int, whole: bool, release: Callable[[str], None]
    ) -> list[Pending]:
        """The children, in order, that the calls left can screen on `rows` rows while one of them can still be
        scored on the rest of dev; the others are journaled as skipped and handed by id to `release`, so that they
        may be proposed again. Raises BudgetExceeded when not even one child can reach dev."""
        self.require_dev()
        left = self.tracker.calls_left()
        if left is None:
            return list(pending)
        left -= self.reserve
        kept: list[Pending] = []
        screening, promotion = 0, None
        costs = [self.row_calls(p.candidate, p.touched) for p in pending]
        for p, per_row in zip(pending, costs, strict=True):
            rest = 0 if whole else (self.dev_size - rows) * per_row
            cheapest = rest if promotion is None else min(promotion, rest)
            if screening + rows * per_row + cheapest <= left:
                kept.append(p)
                screening, promotion = screening + rows * per_row, cheapest
                continue
            release(p.candidate.id)
            self.skip(p.candidate, p.operator, f"{left} task-model calls left")
        if not kept:
            self.require_dev(per_row=min(costs))
        return kept

    def skip(self, candidate: Candidate, operator: str | None, reason: str) -> None:
        """Journal a candidate the calls left cannot pay for (it is not scored; a cheaper one may still be)."""
        self.journal.append(SkippedEvent(id=candidate.id, parent=candidate.parent, operator=operator, reason=reason))
