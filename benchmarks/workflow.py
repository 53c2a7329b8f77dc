"""The micro-prompting workflow end to end on GSM8K (a two-step flow: plan, then solve; `tasks/workflow_task.py`):
synthesize rows -> optimize on them -> export fine-tuning data -> serve -> feed real rows with feedback -> monitor ->
reoptimize -> reload. ``../shared/tools/bench-model qwen-0.5b`` is the task model, ``qwen-1.5b`` the generator,
teacher and optimizer model. Each step goes through the command line a user types (``python -m microprompts.cli``), but
serving, which runs in process (FastAPI's test client) so the feedback loop needs no port.

Per step it records rows, model calls, seconds and scores; the optimization on synthesized data is scored on real
GSM8K test rows. ``python benchmarks/workflow.py [--synth 200] [--feed 100] [--test 50] [--budget-calls 300]
[--quick]`` prints a table and writes ``benchmarks/results/workflow.json`` (``workflow.quick.json`` for --quick).
The full run takes hours on two cores: in the first --quick run, synthesizing 12 rows with the 1.5B generator and
teacher took 8.5 minutes (uncached), so 200 rows alone would take over two hours.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from benchmarks.optimize import provenance  # noqa: E402
from benchmarks.tasks.workflow_task import gsm8k_flow, number_match, real_rows  # noqa: E402
from microprompts._io import atomic_write_text  # noqa: E402
from microprompts.serve.app import create_app  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
WORK = RESULTS / "runs" / "workflow"
BENCH_MODEL = ROOT.parent / "shared" / "tools" / "bench-model"
TASK = "benchmarks/tasks/workflow_task.py"
FLOW = f"{TASK}:gsm8k_flow"
METRIC = f"{TASK}:number_match"
FULL = {"synth": 200, "feed": 100, "test": 50, "budget_calls": 300}
QUICK = {"synth": 12, "feed": 10, "test": 8, "budget_calls": 30}


def log(message: str) -> None:
    """A timestamped progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def model_spec(name: str) -> str:
    """`local:PATH` of a bench model (downloaded by the shared tool on first use)."""
    out = subprocess.run([str(BENCH_MODEL), name], capture_output=True, text=True, check=True)
    return "local:" + out.stdout.strip().splitlines()[-1]


def cli(*args: str) -> tuple[dict[str, Any], float]:
    """Run `microprompts ARGS`, echo its stderr, and return its last stdout line as JSON and its seconds."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "microprompts.cli", *args], capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    sys.stderr.write(done.stderr[-4000:])
    if done.returncode != 0:
        raise SystemExit(f"microprompts {args[0]} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return (json.loads(lines[-1]) if lines else {}), seconds


def write_jsonl(rows: list[dict[str, Any]], path: Path) -> str:
    """Rows as JSONL (atomically); returns the path as text."""
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return str(path)


def synthesize_step(args: argparse.Namespace, big: str, steps: dict[str, Any]) -> Path:
    """Synthesize rows with the 1.5B model as generator and teacher (distillation), five real rows as seeds."""
    seeds = write_jsonl(real_rows("train", 900, 5), WORK / "seeds.jsonl")
    out = WORK / "synth.jsonl"
    summary, seconds = cli(
        "synthesize", FLOW, "--n", str(args.synth), "--out", str(out), "--model", big, "--teacher", big,
        "--seed-rows", seeds, "--split", "--seed", "0",
    )  # fmt: skip
    steps["synthesize"] = {
        "rows": summary.get("kept"),
        "generated": summary.get("generated"),
        "rejected": summary.get("rejected"),
        "calls": summary.get("calls"),
        "teacher_calls": summary.get("teacher_calls"),
        "seconds": round(seconds, 1),
    }
    return out


def optimize_step(args: argparse.Namespace, synth: Path, small: str, big: str, steps: dict[str, Any]) -> Path:
    """Optimize on the synthesized train/dev files; score baseline and best on real test rows."""
    test = write_jsonl(real_rows("test", 0, args.test), WORK / "real_test.jsonl")
    run_dir = WORK / "optimize"
    summary, seconds = cli(
        "optimize", FLOW, "--train", str(synth.with_name("synth.train.jsonl")),
        "--dev", str(synth.with_name("synth.dev.jsonl")), "--test", test, "--metric", METRIC,
        "--model", small, "--optimizer-model", big, "--budget-calls", str(args.budget_calls),
        "--out", str(run_dir), "--no-progress",
    )  # fmt: skip
    steps["optimize"] = {
        "rows": sum(1 for _ in synth.with_name("synth.train.jsonl").open()),
        "calls": summary.get("calls"),
        "optimizer_calls": summary.get("optimizer_calls"),
        "seconds": round(seconds, 1),
        "dev": [summary.get("baseline_dev"), summary.get("best_dev")],
        "real_test": [summary.get("baseline_test"), summary.get("best_test")],
        "summary": summary,
    }
    return run_dir / "best.json"


def export_step(best: Path, synth: Path, small: str, steps: dict[str, Any]) -> None:
    """Fine-tuning JSONL from the optimized flow's runs on the synthesized train rows it gets right."""
    summary, seconds = cli(
        "export-finetune", str(best), "--data", str(synth.with_name("synth.train.jsonl")), "--metric", METRIC,
        "--out", str(WORK / "finetune"), "--model", small, "--min-score", "1",
    )  # fmt: skip
    files = summary.get("files") or {}
    steps["export"] = {
        "rows": summary.get("kept"),
        "lines": {n: f["lines"] for n, f in files.items()},
        "tokens": {n: f["tokens"] for n, f in files.items()},
        "seconds": round(seconds, 1),
    }


def wait_ready(client: TestClient, within: float = 600.0) -> None:
    """Wait for the server's model to load (`/invoke` answers 503 until `GET /ready` does 200)."""
    deadline = time.monotonic() + within
    while (ready := client.get("/ready")).status_code != 200:
        if time.monotonic() > deadline:
            raise SystemExit(f"the server was not ready after {within:.0f} s: {ready.text[:300]}")
        time.sleep(1.0)


def serve_step(args: argparse.Namespace, deployed: Path, small: str, steps: dict[str, Any]) -> tuple[TestClient, Path]:
    """Serve the optimized artifact and feed it real rows, each with feedback: 1 when right, else 0 with the gold
    output as its `correction` (a run that failed, e.g. an unparsable reply, is a wrong answer and gets the same)."""
    store = WORK / "runs.sqlite"
    store.unlink(missing_ok=True)
    client = TestClient(create_app(str(deployed), model=small, store=store), base_url="http://127.0.0.1")
    client.__enter__()
    wait_ready(client)
    started, right, calls, failed = time.perf_counter(), 0, 0, 0
    rows = real_rows("train", 0, args.feed)
    for row in rows:
        reply = client.post("/invoke", json={"input": row["inputs"]})
        answer = reply.json()
        run_id = answer.get("run_id") or (answer.get("error") or {}).get("run_id")
        if run_id is None:
            raise SystemExit(f"POST /invoke gave no run id ({reply.status_code}): {reply.text[:300]}")
        failed += reply.status_code != 200
        calls += int((answer.get("usage") or {}).get("calls", 0))
        ok = reply.status_code == 200 and number_match(row, answer.get("output") or {}).value == 1.0
        right += ok
        feedback: dict[str, Any] = {"run_id": run_id, "score": 1.0 if ok else 0.0}
        if not ok:
            feedback["correction"] = row["output"]  # the gold output, type-checked by the server
        sent = client.post("/feedback", json=feedback)
        if sent.status_code != 200:
            raise SystemExit(f"POST /feedback refused ({sent.status_code}): {sent.text[:300]}")
    steps["serve"] = {
        "rows": len(rows),  # every one run and given feedback (a refusal stops the benchmark)
        "calls": calls,
        "failed_runs": failed,
        "seconds": round(time.perf_counter() - started, 1),
        "score": round(right / max(1, len(rows)), 4),
    }
    return client, store


def reoptimize_step(
    args: argparse.Namespace, store: Path, deployed: Path, small: str, big: str, steps: dict[str, Any]
) -> Path:
    """Monitor, then reoptimize from the deployed artifact on the feedback rows (forced, so it always runs)."""
    monitored, seconds = cli("monitor", str(store), "--json", "--window", str(args.feed))
    steps["monitor"] = {"seconds": round(seconds, 1), "artifacts": monitored.get("artifacts")}
    out = WORK / "reoptimized.json"
    out.unlink(missing_ok=True)
    summary, seconds = cli(
        "reoptimize", str(store), "--from", str(deployed), "--below", "1.01", "--window", str(args.feed),
        "--out", str(out), "--metric", METRIC, "--model", small, "--optimizer-model", big,
        "--budget-calls", str(args.budget_calls), "--run-dir", str(WORK / "reoptimize"),
    )  # fmt: skip
    steps["reoptimize"] = {
        "rows": summary.get("rows"),
        "held_out": summary.get("held_out"),
        "seconds": round(seconds, 1),
        "held_out_scores": [summary.get("deployed"), summary.get("new")],
        "written": summary.get("written"),
    }
    return out


def table(steps: dict[str, Any]) -> str:
    """The steps as a markdown table: rows, calls, seconds, scores."""
    lines = ["| step | rows | calls | seconds | scores |", "|---|---|---|---|---|"]
    for name, step in steps.items():
        scores = {k: v for k, v in step.items() if k in ("dev", "real_test", "score", "held_out_scores", "lines")}
        lines.append(
            f"| {name} | {step.get('rows', '')} | {step.get('calls', '')} | {step.get('seconds', '')} | "
            f"{json.dumps(scores) if scores else ''} |"
        )
    return "\n".join(lines)


def save(out: Path, args: argparse.Namespace, steps: dict[str, Any], status: str) -> None:
    """The steps so far as JSON and markdown, written atomically after every step: a stopped run keeps what it did."""
    store = {"args": vars(args), "status": status, **provenance(), "steps": steps}
    atomic_write_text(out, json.dumps(store, indent=1, default=str) + "\n")
    command = " ".join(["python benchmarks/workflow.py", *sys.argv[1:]])
    intro = f"Command: `{command}`; commit {store['commit']}; status: {status}."
    atomic_write_text(out.with_suffix(".md"), f"# The micro-prompting workflow on GSM8K\n\n{intro}\n\n{table(steps)}\n")


def main() -> None:
    """Run every step in order, saving the table after each, then print it."""
    parser = argparse.ArgumentParser(description="The micro-prompting workflow end to end on GSM8K.")
    for key, value in FULL.items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=int, default=value)
    parser.add_argument("--quick", action="store_true", help="A few rows and calls, to check the loop runs.")
    parser.add_argument("--small", help="Task model spec instead of qwen-0.5b (e.g. `local`, for a smoke run).")
    parser.add_argument("--big", help="Generator/teacher/optimizer spec instead of qwen-1.5b.")
    parser.add_argument("--out", type=Path, help="Results JSON (default workflow.json, workflow.quick.json for smoke).")
    args = parser.parse_args()
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    smoke = args.quick or args.small or args.big
    out = args.out or RESULTS / ("workflow.quick.json" if smoke else "workflow.json")
    WORK.mkdir(parents=True, exist_ok=True)
    gsm8k_flow().validate()
    small = args.small or model_spec("qwen-0.5b")
    big = args.big or model_spec("qwen-1.5b")
    steps: dict[str, Any] = {}
    log("synthesize")
    synth = synthesize_step(args, big, steps)
    save(out, args, steps, "running")
    log("optimize")
    best = optimize_step(args, synth, small, big, steps)
    save(out, args, steps, "running")
    log("export-finetune")
    export_step(best, synth, small, steps)
    save(out, args, steps, "running")
    deployed = WORK / "deployed.json"
    shutil.copyfile(best, deployed)
    log("serve + feedback")
    client, store = serve_step(args, deployed, small, steps)
    save(out, args, steps, "running")
    log("monitor + reoptimize")
    new = reoptimize_step(args, store, deployed, small, big, steps)
    if new.is_file():
        shutil.copyfile(new, deployed)
        reloaded = client.post("/reload").json()
        steps["reload"] = {"ok": reloaded.get("ok"), "artifact_hash": reloaded.get("artifact_hash")}
    client.__exit__(None, None, None)
    save(out, args, steps, "done")
    print(table(steps))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
