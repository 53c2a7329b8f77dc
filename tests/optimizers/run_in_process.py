"""A standalone optimization run for the cross-process tests: `python -m tests.optimizers.run_in_process DIR
[--resume] [--die-after N] [--hold-after N] [--executor NAME]` optimizes the simulated topic task with every default
mutator; `--die-after N` ends the process with os._exit (like SIGKILL: no cleanup) before its N+1-th paid model call;
`--hold-after N` instead writes DIR.held and blocks every call from the N+1-th on, for the test to kill it;
`--executor ray` runs the model on 2 Ray actors of a local Ray started here (2 declared CPUs). Prints the summary JSON
line and, in DIR.calls.log, one line per paid model call."""

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
    hold_after = int(argv[argv.index("--hold-after") + 1]) if "--hold-after" in argv else None
    executor = argv[argv.index("--executor") + 1] if "--executor" in argv else "local"
    if executor == "ray":
        import ray  # an optional extra: only the Ray runs need it

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    count = itertools.count(1)
    lock = threading.Lock()
    log = run_dir.parent / f"{run_dir.name}.calls.log"

    def before_call() -> None:
        with lock:
            n = next(count)
            if die_after is not None and n > die_after:
                os._exit(9)
            held = hold_after is not None and n > hold_after
            if held:
                (run_dir.parent / f"{run_dir.name}.held").touch()
            else:
                with open(log, "a", encoding="utf-8") as fh:
                    fh.write(f"{n}\n")
        if held:
            threading.Event().wait()  # never sent: the test kills the process while this call waits

    result = optimize(
        h.topic_flow(),
        train=h.rows(0, 10),
        dev=h.rows(100, 10),
        test=h.rows(200, 4),
        metric=exact_match("label"),
        model=h.model(),
        optimizer_model="none",  # the calls logged are task calls: the no-model operators only
        search=BeamSearch(2, 3, 4),
        minibatch=5,
        budget=Budget(calls=140),
        run_dir=run_dir,
        resume=resume,
        progress=False,
        before_call=before_call,
        executor=executor,
        replicas=2 if executor == "ray" else None,
    )
    print(json.dumps(result.summary()))


if __name__ == "__main__":
    main(sys.argv[1:])
