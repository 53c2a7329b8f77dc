"""The micro-prompting workflow end to end on GSM8K (plan, write an expression, calculate; `tasks/workflow_task.py`):
synthesize rows -> optimize on them -> export fine-tuning data -> serve -> feed real rows with feedback -> monitor ->
reoptimize -> reload. ``../shared/tools/bench-model qwen-0.5b`` is the task model, ``qwen-1.5b`` the generator,
teacher and optimizer model. Each step goes through the command line a user types (``python -m microprompts.cli``), but
serving, which runs in process (FastAPI's test client) so the feedback loop needs no port.

Per step it records rows, model calls, seconds and scores; the optimization on synthesized data is scored on real
GSM8K test rows. ``python benchmarks/workflow.py [--synth 200] [--feed 100] [--test 50] [--budget-calls 300]
[--synth-chunk 50] [--replicas 2] [--resume] [--quick]`` prints a table and writes ``benchmarks/results/workflow.json``
(``workflow.quick.json`` for --quick); ``--report-only [--notes FILE]`` rewrites its markdown, with notes.

A full run takes about 105 minutes on two cores (68 of them synthesizing 200 rows), and the call cache does not
outlive the machine, so it resumes by steps: rows are synthesized in seeded chunks (`microprompts synthesize --seed
K`), each chunk's file kept under ``benchmarks/results/workflow/`` (committed, as is the optimized artifact) and merged
with near-duplicates across chunks dropped; ``--resume`` keeps every step the results file records as done and runs
the rest. Serving and reoptimizing run together (the reload needs the live server).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from benchmarks.optimize import git_commit, provenance  # noqa: E402
from benchmarks.tasks.workflow_task import gsm8k_flow, number_match, real_rows  # noqa: E402
from microprompts._io import atomic_write_text  # noqa: E402
from microprompts.data import Dataset, Row  # noqa: E402
from microprompts.data.synthesize import Deduper, write_rows, write_splits  # noqa: E402
from microprompts.nodes.function import DEFAULT_ALLOWED  # noqa: E402
from microprompts.serve.app import create_app  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
WORK = RESULTS / "runs" / "workflow"  # scratch: copies of real rows, run directories (ignored by git)
STATE = RESULTS / "workflow"  # what a later session resumes from: synthesized chunks, the optimized artifact
BENCH_MODEL = ROOT.parent / "shared" / "tools" / "bench-model"
TASK = "benchmarks/tasks/workflow_task.py"
FLOW = f"{TASK}:gsm8k_flow"
METRIC = f"{TASK}:number_match"
TOOLS = "benchmarks.tasks.workflow_task"  # the module of the flow's calculator, which its artifacts import
FULL = {"synth": 200, "feed": 100, "test": 50, "budget_calls": 300, "synth_chunk": 50}
QUICK = {"synth": 12, "feed": 10, "test": 8, "budget_calls": 30, "synth_chunk": 12}


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


def merged(paths: list[Path]) -> list[Row]:
    """The chunks' rows in order, a row dropped when it (nearly) repeats one kept before (chunks are synthesized
    apart, so only the merge sees across them)."""
    dedupe, rows = Deduper(), []
    for path in paths:
        for row in Dataset.load(path):
            if dedupe.verdict(row.inputs) is None:
                dedupe.add(row.inputs)
                rows.append(row)
    return rows


def synthesize_step(
    args: argparse.Namespace, big: str, steps: dict[str, Any], state: Path, saved: Callable[[], None]
) -> Path:
    """Synthesize rows with the 1.5B model as generator and teacher (distillation), five real rows as seeds, in
    seeded chunks (each saved as it finishes), then merge them and write the seeded train/dev/test split."""
    seeds = write_jsonl(real_rows("train", 900, 5), WORK / "seeds.jsonl")
    step = steps.setdefault("synthesize", {"chunks": [], "done": False})
    chunks: list[dict[str, Any]] = step["chunks"]
    paths = [state / f"synth.chunk{k}.jsonl" for k in range(len(chunks))]
    most = -(-args.synth // args.synth_chunk) + 3
    while len(rows := merged(paths)) < args.synth and len(chunks) < most:
        k = len(chunks)
        path = state / f"synth.chunk{k}.jsonl"
        log(f"synthesize chunk {k}: {len(rows)} of {args.synth} rows so far")
        summary, seconds = cli(
            "synthesize", FLOW, "--n", str(min(args.synth_chunk, args.synth - len(rows))), "--out", str(path),
            "--model", big, "--teacher", big, "--seed-rows", seeds, "--seed", str(k), "--no-progress",
        )  # fmt: skip
        keys = ("kept", "generated", "rejected", "calls", "teacher_calls", "budget_exhausted")
        chunks.append({**{key: summary.get(key) for key in keys}, "seconds": round(seconds, 1), **git_commit()})
        paths.append(path)
        saved()
    out = WORK / "synth.jsonl"
    merged_count, rows = len(rows), rows[: args.synth]
    write_rows(rows, out)
    write_splits(rows, out, seed=0)
    rejected: dict[str, int] = {}
    for chunk in chunks:
        for reason, count in (chunk.get("rejected") or {}).items():
            rejected[reason] = rejected.get(reason, 0) + count
    kept_in_chunks = sum(int(chunk.get("kept") or 0) for chunk in chunks)
    rejected["near duplicate across chunks"] = max(0, kept_in_chunks - merged_count)
    step.update(
        rows=len(rows),
        generated=sum(int(chunk.get("generated") or 0) for chunk in chunks),
        rejected=rejected,
        calls=sum(int(chunk.get("calls") or 0) for chunk in chunks),
        teacher_calls=sum(int(chunk.get("teacher_calls") or 0) for chunk in chunks),
        seconds=round(sum(float(chunk["seconds"]) for chunk in chunks), 1),
        done=True,
    )
    return out


def optimize_step(
    args: argparse.Namespace, synth: Path, small: str, big: str, steps: dict[str, Any], state: Path
) -> Path:
    """Optimize on the synthesized train/dev files; score baseline and best on real test rows; the best artifact is
    kept in `state` for a later session."""
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
    best = state / "best.json"
    shutil.copyfile(run_dir / "best.json", best)
    return best


def export_step(best: Path, synth: Path, small: str, steps: dict[str, Any]) -> None:
    """Fine-tuning JSONL from the optimized flow's runs on the synthesized train rows it gets right."""
    summary, seconds = cli(
        "export-finetune", str(best), "--data", str(synth.with_name("synth.train.jsonl")), "--metric", METRIC,
        "--out", str(WORK / "finetune"), "--model", small, "--min-score", "1", "--allow-module", TOOLS,
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
    app = create_app(str(deployed), model=small, store=store, allow_modules=[*DEFAULT_ALLOWED, TOOLS])
    client = TestClient(app, base_url="http://127.0.0.1")
    client.__enter__()
    wait_ready(client)
    rows = real_rows("train", 0, args.feed)

    def feed(row: dict[str, Any]) -> tuple[bool, int, bool]:
        """Run one row and send its feedback; whether the run failed, its calls, whether it was right."""
        reply = client.post("/invoke", json={"input": row["inputs"]})
        answer = reply.json()
        run_id = answer.get("run_id") or (answer.get("error") or {}).get("run_id")
        if run_id is None:
            raise SystemExit(f"POST /invoke gave no run id ({reply.status_code}): {reply.text[:300]}")
        ok = reply.status_code == 200 and number_match(row, answer.get("output") or {}).value == 1.0
        feedback: dict[str, Any] = {"run_id": run_id, "score": 1.0 if ok else 0.0}
        if not ok:
            feedback["correction"] = row["output"]  # the gold output, type-checked by the server
        sent = client.post("/feedback", json=feedback)
        if sent.status_code != 200:
            raise SystemExit(f"POST /feedback refused ({sent.status_code}): {sent.text[:300]}")
        return reply.status_code != 200, int((answer.get("usage") or {}).get("calls", 0)), ok

    started = time.perf_counter()
    with ThreadPoolExecutor(max(1, args.replicas)) as pool:  # as many rows at once as there are model instances
        done = list(pool.map(feed, rows))
    failed, calls, right = (sum(int(d[i]) for d in done) for i in range(3))
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
        "--budget-calls", str(args.budget_calls), "--run-dir", str(WORK / "reoptimize"), "--allow-module", TOOLS,
    )  # fmt: skip
    steps["reoptimize"] = {
        "rows": summary.get("rows"),
        "held_out": summary.get("held_out"),
        "seconds": round(seconds, 1),
        "held_out_scores": [summary.get("deployed"), summary.get("new")],
        "written": summary.get("written"),
    }
    return out


def _score(value: Any) -> str:
    """A score as three decimals ('-' when missing)."""
    return "-" if value is None else f"{float(value):.3f}"


def shows(name: str, step: dict[str, Any]) -> str:
    """What a step's numbers say, in words (the table's last column)."""
    if name == "synthesize":
        rejected = ", ".join(f"{n} {why}" for why, n in (step.get("rejected") or {}).items() if n)
        teacher = step.get("teacher_calls")
        return f"generated {step.get('generated')}, rejected {rejected or 'none'}; {teacher} teacher calls"
    if name == "optimize":
        dev, test = step.get("dev") or [None, None], step.get("real_test") or [None, None]
        return f"synthesized dev {_score(dev[0])} -> {_score(dev[1])}; real test {_score(test[0])} -> {_score(test[1])}"
    if name == "export":
        files = [
            f"{n} {lines} lines / {(step.get('tokens') or {}).get(n)} tokens" for n, lines in step["lines"].items()
        ]
        return "; ".join(files)
    if name == "serve":
        return f"{_score(step.get('score'))} right; {step.get('failed_runs')} failed runs"
    if name == "monitor":
        nodes = ((step.get("artifacts") or [{}])[0] or {}).get("nodes") or {}
        per = [f"{n} {v['seconds']:.1f} s / {v['tokens']:.0f} tokens" for n, v in nodes.items() if v.get("tokens")]
        return "per node a run: " + ", ".join(per) if per else ""
    if name == "reoptimize":
        deployed, new = step.get("held_out_scores") or [None, None]
        verdict = "new artifact written" if step.get("written") else "deployed artifact kept"
        return f"held-out {step.get('held_out')} rows: deployed {_score(deployed)} vs new {_score(new)}; {verdict}"
    if name == "reload":
        return f"reloaded: {step.get('ok')}"
    return ""


def table(steps: dict[str, Any]) -> str:
    """The steps as a markdown table: rows, calls, seconds, the commit each ran at, and what it shows."""
    lines = ["| step | rows | calls | seconds | commit | shows |", "|---|---:|---:|---:|---|---|"]
    for name, step in steps.items():
        calls = step.get("calls", "")
        if step.get("optimizer_calls"):
            calls = f"{calls} + {step['optimizer_calls']} optimizer"
        lines.append(
            f"| {name} | {step.get('rows', '')} | {calls} | {step.get('seconds', '')} | "
            f"{str(step.get('commit', ''))[:7]} | {shows(name, step)} |"
        )
    return "\n".join(lines)


def render(store: dict[str, Any]) -> str:
    """The results file's markdown: the command, the table, and the notes."""
    steps = store.get("steps") or {}
    intro = f"Command: `{store.get('command', 'python benchmarks/workflow.py')}`; status: {store.get('status')}."
    if len({step.get("commit") for step in steps.values() if step.get("commit")}) > 1:
        intro += " Resumed: each step ran at the commit its row names."
    notes = "".join(f"\n- {note}" for note in store.get("notes") or [])
    return f"# The micro-prompting workflow on GSM8K\n\n{intro}\n\n{table(steps)}\n" + (
        f"\nNotes:\n{notes}\n" if notes else ""
    )


def save(out: Path, args: argparse.Namespace, steps: dict[str, Any], status: str, notes: list[str]) -> None:
    """The steps so far as JSON and markdown, written atomically after every step: a stopped run keeps what it did."""
    kept = {k: v for k, v in vars(args).items() if k not in ("resume", "report_only", "notes")}
    store: dict[str, Any] = {"args": kept, "status": status}
    store |= {"command": " ".join(["python benchmarks/workflow.py", *sys.argv[1:]]), **provenance()}
    for step in steps.values():  # each step the commit it ran at (a resumed run spans several)
        step.setdefault("commit", store["commit"])
    store |= {"steps": steps, "notes": notes}
    write(out, store)


def write(out: Path, store: dict[str, Any]) -> str:
    """The results file and its markdown, each written atomically; returns the markdown."""
    atomic_write_text(out, json.dumps(store, indent=1, default=str) + "\n")
    text = render(store)
    atomic_write_text(out.with_suffix(".md"), text)
    return text


def report_only(out: Path, notes: Path | None) -> None:
    """Rewrite the markdown from the results file, with the notes of `notes` (paragraphs) when given."""
    store = json.loads(out.read_text(encoding="utf-8"))
    if notes is not None:
        store["notes"] = [" ".join(p.split()) for p in notes.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    print(write(out, store))


def resumed(out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The steps an earlier run of the same sizes recorded (--resume), else none."""
    if not args.resume or not out.is_file():
        return {}
    store = json.loads(out.read_text(encoding="utf-8"))
    sizes = {key: store.get("args", {}).get(key) for key in FULL}
    if sizes != {key: getattr(args, key) for key in FULL}:
        raise SystemExit(f"--resume: {out} was made with {sizes}; run the same sizes, or without --resume")
    steps = dict(store.get("steps") or {})
    log(f"resuming: done already {[name for name, step in steps.items() if step.get('done', True)]}")
    return steps


def main() -> None:
    """Run every step in order, saving the table after each (skipping those --resume finds done), then print it."""
    parser = argparse.ArgumentParser(description="The micro-prompting workflow end to end on GSM8K.")
    for key, value in FULL.items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=int, default=value)
    parser.add_argument("--quick", action="store_true", help="A few rows and calls, to check the loop runs.")
    parser.add_argument("--small", help="Task model spec instead of qwen-0.5b (e.g. `local`, for a smoke run).")
    parser.add_argument("--big", help="Generator/teacher/optimizer spec instead of qwen-1.5b.")
    parser.add_argument("--out", type=Path, help="Results JSON (default workflow.json, workflow.quick.json for smoke).")
    parser.add_argument("--resume", action="store_true", help="Keep the steps the results file records as done.")
    parser.add_argument(
        "--replicas", type=int, default=2, help="llama.cpp instances per local model (MICROPROMPTS_REPLICAS)."
    )
    parser.add_argument("--report-only", action="store_true", help="Rewrite the markdown from the results file.")
    parser.add_argument("--notes", type=Path, help="With --report-only: the report's notes, a paragraph each.")
    args = parser.parse_args()
    # two 1-thread instances answer the teacher's and the evaluations' concurrent rows at once (`scale.md`: 1.61x one
    # instance on 2 cores); every CLI step below inherits it, and so does the in-process server
    os.environ["MICROPROMPTS_REPLICAS"] = str(args.replicas)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    smoke = args.quick or args.small or args.big
    out = args.out or RESULTS / ("workflow.quick.json" if smoke else "workflow.json")
    if args.report_only:
        return report_only(out, args.notes)
    state = WORK / "state" if smoke else STATE  # only the full run's state is kept in git
    WORK.mkdir(parents=True, exist_ok=True)
    state.mkdir(parents=True, exist_ok=True)
    gsm8k_flow().validate()
    small = args.small or model_spec("qwen-0.5b")
    big = args.big or model_spec("qwen-1.5b")
    steps = resumed(out, args)
    notes: list[str] = (json.loads(out.read_text(encoding="utf-8")).get("notes") or []) if steps else []
    if not steps:  # a fresh run: chunks left by an earlier one are not this run's
        for stale in state.glob("synth.chunk*.jsonl"):
            stale.unlink()
    log("synthesize")
    synth = synthesize_step(args, big, steps, state, lambda: save(out, args, steps, "running", notes))
    save(out, args, steps, "running", notes)
    if "optimize" in steps:
        best = state / "best.json"
    else:
        log("optimize")
        best = optimize_step(args, synth, small, big, steps, state)
        save(out, args, steps, "running", notes)
    if "export" not in steps:
        log("export-finetune")
        export_step(best, synth, small, steps)
        save(out, args, steps, "running", notes)
    if "reoptimize" not in steps:
        deployed = WORK / "deployed.json"
        shutil.copyfile(best, deployed)
        log("serve + feedback")
        client, store = serve_step(args, deployed, small, steps)
        save(out, args, steps, "running", notes)
        log("monitor + reoptimize")
        new = reoptimize_step(args, store, deployed, small, big, steps)
        if new.is_file():
            shutil.copyfile(new, deployed)
            shutil.copyfile(new, state / "reoptimized.json")
            reloaded = client.post("/reload").json()
            steps["reload"] = {"ok": reloaded.get("ok"), "artifact_hash": reloaded.get("artifact_hash")}
        client.__exit__(None, None, None)
    save(out, args, steps, "done", notes)
    print(table(steps))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
