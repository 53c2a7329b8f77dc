"""A standalone optimization run for the cross-process tests: `python -m tests.optimizers.run_in_process DIR
[--resume] [--die-after N]` optimizes the simulated topic task with every default mutator; `--die-after N` ends
the process with os._exit (like SIGKILL: no cleanup) before its N+1-th paid model call. Prints the summary JSON
line and, in DIR/calls.log, one line per paid model call."""

from __future__ import annotations

import itertools
import json
import os
import sys
import threading
from pathlib import Path

from microprompts.evals import exact_match
from microprompts.optimizers import BeamSearch, Budget, optimize
from tests.optimizers import engine_helpers as h


def main(argv: list[str]) -> None:
    run_dir = Path(argv[0])
    resume = "--resume" in argv
    die_after = int(argv[argv.index("--die-after") + 1]) if "--die-after" in argv else None
    count = itertools.count(1)
    lock = threading.Lock()
    log = run_dir.parent / f"{run_dir.name}.calls.log"

    def before_call() -> None:
        with lock:
            n = next(count)
            if die_after is not None and n > die_after:
                os._exit(9)
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(f"{n}\n")

    result = optimize(
        h.topic_flow(),
        train=h.rows(0, 10),
        dev=h.rows(100, 10),
        test=h.rows(200, 4),
        metric=exact_match("label"),
        model=h.model(),
        search=BeamSearch(2, 3, 4),
        minibatch=5,
        budget=Budget(calls=140),
        run_dir=run_dir,
        resume=resume,
        progress=False,
        before_call=before_call,
    )
    print(json.dumps(result.summary()))


if __name__ == "__main__":
    main(sys.argv[1:])
