"""Throughput of the executors, side by side: rows per second evaluating the seat flow.

1. Scale-out by simulation: a fake model that takes a fixed time a call (200 ms) on a local Ray cluster declaring
   as many CPUs as actors (declared, not physical: the actors sleep), with 1, 2, 4 and 8 actors; rows per second
   and efficiency against linear scaling (N times one actor's rate) and against the ideal (N / latency).
2. The embedded model (SmolLM2) on the seat rows, cache off: 1 replica x 1 thread with llama-cpp-python's own
   grammar sampler (the baseline: the default before `models/greedy_grammar.py`), then with the greedy-first grammar
   check: 1 replica x 1 thread (the default on 2 cores), 1 replica x 2 threads, 2 in-process replicas x 1 thread,
   and Ray with 2 actors x 1 thread.
3. An optimization with the embedded model (default settings, a fresh run directory so the cache is cold): the share
   of its wall time inside model calls (target: 95%) and the rest by phase (the summary's ``time_shares``).

Every configuration first runs a few rows untimed (actors started, models loaded), then the timed rows.

``python benchmarks/scale.py [--rows 100 | --quick] [--sim-rows 160] [--actors 1,2,4,8] [--optimize-calls 200]
[--only sim|model|optimize]`` prints the tables and writes ``benchmarks/results/scale.json`` and ``scale.md``
(``--only`` keeps the other parts from the files already there).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from examples.seats.flow import flow as seats_flow  # noqa: E402
from examples.seats.metric import seat_metric  # noqa: E402
from microprompts import CallCache, ModelCaller, evaluate  # noqa: E402
from microprompts.data import Dataset, Row  # noqa: E402
from microprompts.evals.executors import as_executor  # noqa: E402
from microprompts.models.phases import shares_text  # noqa: E402
from microprompts.optimizers import Budget, optimize  # noqa: E402
from microprompts.testing.latency import LatencyChatModel  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
DATA = ROOT / "examples" / "seats" / "data"
REPLY = json.dumps({"recommended_seats": ["economy_14A_window", "economy_15F_window", "economy_16A_window"]})


def seat_rows(n: int) -> list[Row]:
    """The first `n` seat rows (train, dev, then test), cycled with fresh ids when more are asked for."""
    pool = [row for split in ("train", "dev", "test") for row in Dataset.load(DATA / f"{split}.jsonl")]
    return [
        Row(inputs=dict(pool[i % len(pool)].inputs), output=dict(pool[i % len(pool)].output), id=f"r{i}")
        for i in range(n)
    ]


def _load() -> float | None:
    """The machine's 1-minute load average (None where the OS has none)."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def _ray_init(cpus: int) -> Any:
    import ray

    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    return ray


def _timed(executor: Any, model: Any, rows: list[Row], warm: int) -> dict[str, Any]:
    """Warm `warm` rows untimed, then evaluate `rows` with the cache off: rows/s, calls, errors, score."""
    executor.evaluate(seats_flow, rows[:warm], seat_metric, model=model, caller=ModelCaller(cache=None))
    result = executor.evaluate(seats_flow, rows, seat_metric, model=model, caller=ModelCaller(cache=None))
    return {
        "rows": result.n,
        "seconds": round(result.seconds, 3),
        "rows_per_s": round(result.n / result.seconds, 3),
        "calls": result.usage.calls,
        "errors": result.errors,
        "score": round(result.score, 3),
    }


def measure_scale_out(actors: list[int], rows: int, latency: float) -> dict[str, Any]:
    """Rows/s of the fake fixed-latency model on 1..N Ray actors (one declared CPU each)."""
    started_at = _load()
    ray = _ray_init(max(actors))
    model = LatencyChatModel(reply=REPLY, latency=latency)
    data = seat_rows(rows)
    out: list[dict[str, Any]] = []
    try:
        for n in actors:
            with as_executor("ray", replicas=n) as executor:
                out.append({"actors": n, **_timed(executor, model, data, warm=2 * n)})
    finally:
        ray.shutdown()
    one = out[0]["rows_per_s"] / out[0]["actors"]
    for row in out:
        row["efficiency"] = round(row["rows_per_s"] / (one * row["actors"]), 3)
        row["vs_ideal"] = round(row["rows_per_s"] * latency / row["actors"], 3)
    return {"latency_s": latency, "rows": rows, "load_1min": started_at, "runs": out}


def _embedded_configs() -> list[tuple[str, str, dict[str, Any]]]:
    """(label, executor, LocalChatModel settings) of each embedded-model configuration."""
    return [
        ("1 replica x 1 thread, stock grammar sampler (before)", "local", {"n_threads": 1, "fast_grammar": False}),
        ("1 replica x 1 thread (default here)", "local", {"n_threads": 1}),
        ("1 replica x 2 threads", "local", {"n_threads": 2}),
        ("2 replicas x 1 thread", "local", {"n_threads": 1, "replicas": 2}),
        ("ray: 2 actors x 1 thread", "ray", {"n_threads": 1}),
    ]


def measure_embedded(rows: int) -> dict[str, Any]:
    """Rows/s of the embedded model on `rows` seat rows in each configuration, cache off."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError as exc:
        return {"skipped": f"llama_cpp cannot be imported ({exc})"}
    from microprompts.models.local import LocalChatModel, smollm2_path

    path = str(smollm2_path())
    started_at = _load()
    data = seat_rows(rows)
    out: list[dict[str, Any]] = []
    for label, kind, settings in _embedded_configs():
        missing = [name for name in settings if name not in LocalChatModel.model_fields]
        if missing:
            out.append({"config": label, "skipped": f"this LocalChatModel has no {missing[0]}"})
            continue
        model = LocalChatModel(model_path=path, **settings)
        if kind == "ray":
            ray = _ray_init(2)
            try:
                with as_executor("ray", replicas=2) as executor:
                    out.append({"config": label, **_timed(executor, model, data, warm=2)})
            finally:
                ray.shutdown()
        else:
            with as_executor("local") as executor:
                out.append({"config": label, **_timed(executor, model, data, warm=2)})
        print(f"  {label}: {out[-1].get('rows_per_s')} rows/s", file=sys.stderr, flush=True)
    base = next((r["rows_per_s"] for r in out if "rows_per_s" in r), None)
    for row in out:
        if base and "rows_per_s" in row:
            row["speedup"] = round(row["rows_per_s"] / base, 2)
    return {"rows": rows, "load_1min": started_at, "runs": out}


def _seat_search(data: list[Row], rows: int, calls: int, run_dir: Path) -> Any:
    """The seat flow optimized on the embedded model: the first `rows` of `data` as train, the rest as dev."""
    return optimize(
        seats_flow,
        train=data[:rows],
        dev=data[rows:],
        metric=seat_metric,
        model="local",
        budget=Budget(calls=calls),
        run_dir=run_dir,
        progress=False,
    )


def measure_optimize(calls: int, rows: int) -> dict[str, Any]:
    """An optimization of the seat flow with the embedded model under a budget of `calls` task-model calls (`rows`
    train and `rows` dev rows, cold cache): where its wall time went, as the run's summary reports it."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError as exc:
        return {"skipped": f"llama_cpp cannot be imported ({exc})"}
    started_at = _load()
    data = seat_rows(2 * rows)
    with tempfile.TemporaryDirectory() as run_dir:
        result = _seat_search(data, rows, calls, Path(run_dir))
    summary = result.summary()
    print(f"  optimize: {shares_text(result.time_shares)}", file=sys.stderr, flush=True)
    return {
        "budget_calls": calls,
        "rows": rows,
        "load_1min": started_at,
        "calls": summary["calls"],
        "seconds": summary["seconds"],
        "candidates": summary["candidates"],
        "time_shares": summary["time_shares"],
    }


def measure_warm(rows: int, calls: int) -> dict[str, Any]:
    """A warm re-run pays nothing: `evaluate` on `rows` seat rows twice over one call cache (the node asked for `lines`
    replies, which are not grammar-constrained, so some fail to validate after their repair turn), and an optimization
    of `calls` calls twice in one run directory; calls paid by each."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError as exc:
        return {"skipped": f"llama_cpp cannot be imported ({exc})"}
    data = seat_rows(2 * rows)
    node = seats_flow.micro_prompts()[0]
    lines = seats_flow.replace_node(node.with_params(reply_format="lines"))  # no grammar: some replies fail
    out: dict[str, Any] = {"rows": rows, "budget_calls": calls, "evaluate": [], "optimize": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(2):
            caller = ModelCaller(cache=CallCache(Path(tmp) / "calls.sqlite"))
            result = evaluate(lines, data[:rows], seat_metric, model="local", caller=caller)
            out["evaluate"].append(
                {"calls": result.usage.calls, "cached_calls": result.usage.cached_calls, "failed_rows": result.errors}
            )
        for _ in range(2):
            summary = _seat_search(data, rows, calls, Path(tmp) / "run").summary()
            out["optimize"].append({k: summary[k] for k in ("calls", "cached_calls", "best_dev", "seconds")})
    print(f"  warm: {out}", file=sys.stderr, flush=True)
    return out


def report(data: dict[str, Any]) -> str:
    """The tables, as Markdown (printed and written to scale.md)."""
    lines = ["# Scale: rows per second on the seat flow", ""]
    sim = data.get("scale_out")
    if sim:
        lines += [
            f"## Scale-out by simulation (fake model, {sim['latency_s'] * 1000:.0f} ms a call, {sim['rows']} rows, "
            f"local Ray, one declared CPU per actor; load {sim.get('load_1min')} at the start)",
            "",
            "| actors | rows/s | efficiency vs linear | vs ideal (N / latency) | seconds | errors |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['actors']} | {r['rows_per_s']:.2f} | {r['efficiency']:.0%} | {r['vs_ideal']:.0%} | "
            f"{r['seconds']:.1f} | {r['errors']} |"
            for r in sim["runs"]
        ]
        lines.append("")
    emb = data.get("embedded")
    if emb:
        lines += [f"## Embedded model (SmolLM2 135M, seat rows, cache off, {data['machine']['cpus']} cores)", ""]
        if "skipped" in emb:
            lines.append(f"skipped: {emb['skipped']}")
        else:
            lines += [
                f"{emb['rows']} rows each; load {emb.get('load_1min')} at the start.",
                "",
                "| configuration | rows/s | speedup | calls | seconds | errors | score |",
                "|---|---:|---:|---:|---:|---:|---:|",
            ]
            for r in emb["runs"]:
                if "skipped" in r:
                    lines.append(f"| {r['config']} | skipped: {r['skipped']} | | | | | |")
                    continue
                lines.append(
                    f"| {r['config']} | {r['rows_per_s']:.3f} | {r.get('speedup', 1.0):.2f}x | {r['calls']} | "
                    f"{r['seconds']:.1f} | {r['errors']} | {r['score']:.3f} |"
                )
        lines += _note(data, "embedded")
    opt = data.get("optimize")
    if opt:
        lines += ["## An optimization with the embedded model: share of wall time inside model calls (target 95%)", ""]
        if "skipped" in opt:
            lines.append(f"skipped: {opt['skipped']}")
        else:
            shares = opt["time_shares"]
            lines += [
                f"Seat flow, {opt['rows']} train and {opt['rows']} dev rows, a budget of {opt['budget_calls']} calls, "
                f"cold cache; load {opt.get('load_1min')} at the start: {opt['calls']} calls, {opt['candidates']} "
                f"candidates in {opt['seconds']:.1f} s.",
                "",
                f"**Inside model calls: {shares.get('model', 0.0):.1%}** of the wall time ({shares_text(shares)}).",
            ]
        lines += _note(data, "optimize")
    warm = data.get("warm")
    if warm:
        lines += ["## A warm re-run pays no model call (embedded model, seat flow)", ""]
        if "skipped" in warm:
            lines.append(f"skipped: {warm['skipped']}")
        else:
            lines += ["| run | first: calls paid | second: calls paid | second: cached calls |", "|---|---:|---:|---:|"]
            ev, op = warm["evaluate"], warm["optimize"]
            lines.append(
                f"| `evaluate`, {warm['rows']} rows, `lines` replies ({ev[0]['failed_rows']} rows failed) | "
                f"{ev[0]['calls']} | {ev[1]['calls']} | {ev[1]['cached_calls']} |"
            )
            lines.append(
                f"| `optimize`, budget {warm['budget_calls']} calls, one run directory | {op[0]['calls']} | "
                f"{op[1]['calls']} | {op[1]['cached_calls']} |"
            )
        lines += _note(data, "warm")
    machine = data["machine"]
    lines += [f"Python {machine['python']}, {machine['cpus']} cores.", ""]
    lines += _note(data, "build")
    return "\n".join(lines).rstrip("\n") + "\n"


def _note(data: dict[str, Any], part: str) -> list[str]:
    """The hand-written note on a part (what the table alone does not say: the machine's state, the build, the
    baseline), kept in the JSON's ``notes`` so a re-run of another part keeps it; then a blank line."""
    text = (data.get("notes") or {}).get(part)
    return ["", text.strip(), ""] if text else [""]


def main(argv: list[str] | None = None) -> int:
    """Measure, print the tables, write the JSON and the Markdown."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=100, help="seat rows per embedded-model configuration")
    parser.add_argument(
        "--quick", action="store_true", help="20 embedded-model rows, 40 simulated rows, an optimization of 30 calls"
    )
    parser.add_argument("--sim-rows", type=int, default=160, help="rows per scale-out configuration")
    parser.add_argument("--actors", default="1,2,4,8", help="actor counts for the scale-out")
    parser.add_argument("--latency", type=float, default=0.2, help="the fake model's seconds per call")
    parser.add_argument("--optimize-calls", type=int, default=200, help="the optimization's budget of calls")
    parser.add_argument("--optimize-rows", type=int, default=20, help="train rows and dev rows of the optimization")
    parser.add_argument(
        "--only", choices=["sim", "model", "optimize", "warm"], help="run one part, keep the others from the files"
    )
    parser.add_argument("--out", default=str(RESULTS / "scale.json"), help="JSON output (scale.md beside it)")
    args = parser.parse_args(argv)
    rows, sim_rows = (20, 40) if args.quick else (args.rows, args.sim_rows)
    out = Path(args.out)
    data: dict[str, Any] = {}
    if args.only and out.is_file():
        data = json.loads(out.read_text(encoding="utf-8"))
    data["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count()}
    if args.only in (None, "sim"):
        data["scale_out"] = measure_scale_out([int(a) for a in args.actors.split(",")], sim_rows, args.latency)
    if args.only in (None, "model"):
        data["embedded"] = measure_embedded(rows)
    if args.only in (None, "optimize"):
        calls, opt_rows = (30, 10) if args.quick else (args.optimize_calls, args.optimize_rows)
        data["optimize"] = measure_optimize(calls, opt_rows)
    if args.only in (None, "warm"):
        data["warm"] = measure_warm(10 if args.quick else 20, 30 if args.quick else 60)
    text = report(data)
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(text, encoding="utf-8")
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
