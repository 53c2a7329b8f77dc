"""microprompts systems (run by the project's venv): ``baseline`` (the seed flow, unoptimized),
``microprompts-beam`` and ``microprompts-evolution`` (``microprompts.optimizers.optimize``).

The task model is ``openai:qwen@<proxy>/sys/<cell>/task/v1`` and the optimizer model the same server under role
``optimizer``; the final test run uses role ``test``, so the budget counts only what optimizing spent. The
optimizer gets train and dev only; the test rows are run here, on the best flow, with the same scorer as
every other system.
"""

from __future__ import annotations

import inspect
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))
import common  # noqa: E402


def spec(cell: dict, role: str) -> str:
    return f"openai:{cell['model']}@{cell['urls'][role]}"


def rows_of(records: list[dict]):
    from microprompts.data.dataset import Row

    return [Row(inputs=r["inputs"], output=r["output"], id=r["id"]) for r in records]


def describe(flow) -> str:
    """The flow's prompts as text, for the report."""
    try:
        from microprompts import MicroPrompt

        parts = []
        for node in flow.nodes.values():
            if isinstance(node, MicroPrompt):
                sections = "\n".join(
                    f"[{s.kind}] {getattr(s, 'text', '') or getattr(s, 'content', '')}" for s in node.sections
                )
                parts.append(
                    f"## {node.name} (params {node.params.model_dump(exclude_defaults=True)}, "
                    f"{len(node.shown_examples())} examples)\n{sections}"
                )
            else:
                parts.append(f"## {node.name} ({type(node).__name__})")
        return "\n".join(parts)[:4000]
    except Exception as exc:  # noqa: BLE001
        return f"(could not describe: {exc})"


def _value(attr):
    """A result attribute that may be a method or a property."""
    try:
        return attr() if callable(attr) else attr
    except Exception as exc:  # noqa: BLE001 - reporting must not lose a finished run
        return f"(unavailable: {exc})"


def main(config_path: str) -> None:
    cell = common.load_cell(config_path)
    meta = cell["meta"]
    started = time.time()
    result: dict = {"system": cell["system"], "task": cell["task"], "status": "failed", "config": {}}
    try:
        result.update(run(cell, meta, result))
        result["status"] = "ok"
    except BaseException as exc:  # noqa: BLE001 - a crash is a recorded result
        result["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        result["traceback"] = traceback.format_exc()[-4000:]
    finally:
        result["seconds"] = time.time() - started
        common.write_json(cell["out"], result)


def run(cell: dict, meta: dict, result: dict) -> dict:
    from benchmarks.peers.tasks.flows import metric_for, prediction_of, seed_flow
    from microprompts import evaluate

    flow = seed_flow(meta)
    metric = metric_for(meta)
    out: dict = {}
    system = cell["system"]
    if system == "baseline":
        result["config"] = {"flow": "the seed flow, unoptimized", "nodes": list(flow.nodes)}
        best = flow
    else:
        from microprompts.optimizers import Budget, optimize

        search = system.split("-", 1)[1]
        kwargs = dict(
            train=rows_of(cell["train"]),
            dev=rows_of(cell["dev"]),
            metric=metric,
            search=search,
            budget=Budget(calls=int(cell["budget_calls"])),
            model=spec(cell, "task"),
            optimizer_model=spec(cell, "optimizer"),
            run_dir=str(Path(cell["work_dir"]) / "run"),
            seed=int(cell["seed"]),
            concurrency=int(cell.get("concurrency", 4)),
            progress=False,
        )
        accepted = inspect.signature(optimize).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
            kwargs = {k: v for k, v in kwargs.items() if k in accepted}
        result["config"] = {
            "search": search,
            "budget": f"Budget(calls={cell['budget_calls']})",
            "defaults": "microprompts.optimizers.optimize defaults otherwise",
            "train": len(cell["train"]),
            "dev": len(cell["dev"]),
            "seed": cell["seed"],
        }
        t0 = time.time()
        res = optimize(flow, **kwargs)
        out["fit_seconds"] = time.time() - t0
        best = res.best
        out["dev_score"] = getattr(res, "best_score", None)
        summary = _value(getattr(res, "summary", None))
        out["own_view"] = {
            "usage": getattr(res, "usage", None),
            "dev_baseline": getattr(res, "baseline_score", None),
            "stopped": getattr(res, "stopped", None),
            "summary": summary,
            "lineage": _value(getattr(res, "lineage", None)),
        }
        try:
            best.save(str(Path(cell["work_dir"]) / "best.json"))
        except Exception:  # noqa: BLE001
            pass
    test = evaluate(
        best, rows_of(cell["test"]), metric, model=spec(cell, "test"), concurrency=int(cell.get("concurrency", 4))
    )
    out["predictions"] = {r.id: prediction_of(meta, r.prediction) for r in test.rows}
    out["test_errors"] = test.errors
    out["own_test_score"] = test.score
    out["best_prompt"] = describe(best)
    errors = [r.error for r in test.rows if r.error][:3]
    if errors:
        out["test_error_examples"] = errors
    return out


if __name__ == "__main__":
    main(sys.argv[1])
