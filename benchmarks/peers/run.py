"""Side-by-side benchmark: microprompts against SAMMO, DSPy (MIPROv2, GEPA) and TextGrad on one local model.

One command does everything::

    python benchmarks/peers/run.py                      # the full matrix (5 tasks x 8 systems, 300 calls)
    python benchmarks/peers/run.py --quick              # prove the harness end to end (2 tasks, 60 calls)
    python benchmarks/peers/run.py --tasks navigate --systems baseline dspy-gepa --budget-calls 100
    python benchmarks/peers/run.py --tasks navigate --seeds 0 1 2   # each cell per seed; the report gives means

What it does, in order:

1. installs each peer in its own virtual environment under ``benchmarks/peers/.venvs/`` (sammo==0.3.3,
   dspy[optuna]==3.4.*, textgrad; plus matplotlib for the plot), once;
2. gets the model (``../shared/tools/bench-model qwen-0.5b``) and starts ONE ``python -m llama_cpp.server``
   with the project's venv on 127.0.0.1, and the counting proxy (``proxy.py``) in front of it;
3. writes each task's train / dev / test rows (JSONL) into the work folder (never into the repository);
4. runs every (task, system) cell as its own process with that system's venv, pointed at
   ``http://127.0.0.1:PORT/sys/<task>.<system>/<role>/v1`` where role is ``task`` (the task model while
   optimizing: the budgeted calls), ``optimizer`` (the optimizer / reflection / proposal model) or ``test`` (the
   final test-set run); every system gets the same splits, seed instruction and task-model call budget;
5. scores every system's test predictions with the same scorer (``common.score``), takes calls and tokens from
   the proxy's counters, and writes ``benchmarks/results/peers.json``, ``peers.md`` and ``peers.png`` after
   every cell, atomically. A finished cell is never run again unless ``--redo`` (or ``--retry-failed`` for
   failed ones); a killed run resumes where it stopped.

The harness itself is stdlib-only: run it with any Python 3.10+.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
import common  # noqa: E402
import report  # noqa: E402
from tasks import TASKS, prepare  # noqa: E402

PROJECT_PY = REPO / ".venv" / "bin" / "python"
VENVS = HERE / ".venvs"
PEER_VENVS = {
    "sammo": ["sammo==0.3.3"],
    "dspy": ["dspy[optuna]==3.4.*"],
    "textgrad": ["textgrad"],
    "plot": ["matplotlib"],
}
SYSTEMS = {
    # name: (python, runner script)
    "baseline": ("project", "microprompts_runner.py"),
    "baseline-plain": ("project", "plain_runner.py"),
    "microprompts-beam": ("project", "microprompts_runner.py"),
    "microprompts-evolution": ("project", "microprompts_runner.py"),
    "sammo": ("sammo", "sammo_runner.py"),
    "dspy-mipro": ("dspy", "dspy_runner.py"),
    "dspy-gepa": ("dspy", "dspy_runner.py"),
    "textgrad": ("textgrad", "textgrad_runner.py"),
}
DEFAULT_SYSTEMS = list(SYSTEMS)
DEFAULT_TASKS = ["implicatures", "navigate", "object_counting", "seats", "hotpot"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------------------------------------ setup
def python_of(kind: str) -> Path:
    return PROJECT_PY if kind == "project" else VENVS / kind / "bin" / "python"


def ensure_venv(name: str) -> Path:
    """Create ``.venvs/<name>`` and install its packages once (a marker file records what was installed)."""
    spec = PEER_VENVS[name]
    venv = VENVS / name
    marker = venv / ".installed"
    if marker.is_file() and marker.read_text() == json.dumps(spec):
        return venv / "bin" / "python"
    log(f"installing {name} venv: {' '.join(spec)}")
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *spec], check=True)
    marker.write_text(json.dumps(spec))
    return venv / "bin" / "python"


def get_model(name: str) -> str:
    tool = REPO.parent / "shared" / "tools" / "bench-model"
    out = subprocess.run([str(tool), name], check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def wait_for_llama_server_package(timeout: float) -> None:
    deadline = time.time() + timeout
    while True:
        ok = subprocess.run([str(PROJECT_PY), "-c", "import llama_cpp.server"], capture_output=True).returncode == 0
        if ok:
            return
        if time.time() > deadline:
            raise SystemExit(
                "llama_cpp.server is not importable in the project venv (.venv); "
                "install llama-cpp-python[server] there first"
            )
        log("waiting for llama-cpp-python[server] in the project venv ...")
        time.sleep(30)


def http_ok(url: str, timeout: float = 30) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status == 200
    except Exception:  # noqa: BLE001
        return False


class Servers:
    """The model server and the counting proxy, started once and stopped at exit."""

    def __init__(self, model_path: str, port: int, work: Path, threads: int, n_ctx: int, max_tokens_cap: int) -> None:
        self.port, self.work, self.max_tokens_cap = port, work, max_tokens_cap
        self.procs: list[subprocess.Popen] = []
        self.model_path, self.threads, self.n_ctx = model_path, threads, n_ctx

    def start(self) -> None:
        upstream = self.port + 1
        if http_ok(f"http://127.0.0.1:{self.port}/_health"):
            log(f"reusing the proxy and model server already on port {self.port}")
            return
        llama_log = open(self.work / "llama_server.log", "a")
        self.procs.append(
            subprocess.Popen(
                [
                    str(PROJECT_PY),
                    "-m",
                    "llama_cpp.server",
                    "--model",
                    self.model_path,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(upstream),
                    "--n_ctx",
                    str(self.n_ctx),
                    "--n_threads",
                    str(self.threads),
                    "--model_alias",
                    "qwen",
                ],
                stdout=llama_log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        proxy_log = open(self.work / "proxy.log", "a")
        self.procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    str(HERE / "proxy.py"),
                    "--upstream",
                    f"http://127.0.0.1:{upstream}",
                    "--port",
                    str(self.port),
                    "--stats-file",
                    str(self.work / "proxy_stats.json"),
                    "--max-tokens-cap",
                    str(self.max_tokens_cap),
                ],
                stdout=proxy_log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        deadline = time.time() + 300
        while not http_ok(f"http://127.0.0.1:{self.port}/_health"):
            if any(p.poll() is not None for p in self.procs):
                raise SystemExit(f"model server or proxy exited; see {self.work}/llama_server.log, proxy.log")
            if time.time() > deadline:
                raise SystemExit("model server did not come up in 300 s")
            time.sleep(2)
        log(f"model server on :{upstream}, counting proxy on :{self.port}")

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()


def proxy_call(port: int, method: str, path: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read())


# ------------------------------------------------------------------------------------------------ cells
def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except Exception:  # noqa: BLE001
        return "unknown"


def official_seats(data_dir: Path, predictions: dict) -> float | None:
    """Re-score seats predictions with the project's own examples.seats.metric:seat_metric."""
    try:
        out = subprocess.run(
            [str(PROJECT_PY), str(HERE / "score_official.py"), str(data_dir)],
            input=json.dumps(predictions),
            capture_output=True,
            text=True,
            timeout=300,
            cwd=REPO,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])["score"]
    except Exception:  # noqa: BLE001
        return None


def cell_key(task: str, system: str, seed: int) -> str:
    """A cell's key in the results: `task/system`, with `@sN` for a seed other than 0 (seed 0's keys predate seeds)."""
    return f"{task}/{system}" + (f"@s{seed}" if seed else "")


def run_cell(task: str, system: str, args: argparse.Namespace, data_dir: Path, work: Path, settings: dict) -> dict:
    seed = int(settings.get("seed", 0))
    tag = f"{task}.{system}" + (f".s{seed}" if seed else "")
    cell_dir = work / "cells" / tag
    if cell_dir.exists():
        shutil.rmtree(cell_dir)  # a re-run starts clean: no cache from a killed attempt
    cell_dir.mkdir(parents=True)
    proxy_call(args.port, "POST", f"/_reset/{tag}")
    base = f"http://127.0.0.1:{args.port}/sys/{tag}"
    cell = {
        "task": task,
        "system": system,
        "data_dir": str(data_dir),
        "out": str(cell_dir / "result.json"),
        "work_dir": str(cell_dir),
        "budget_calls": args.budget_calls,
        "seed": seed,
        "urls": {role: f"{base}/{role}/v1" for role in ("task", "optimizer", "test")},
        "model": "qwen",
        "concurrency": args.concurrency,
        "quick": args.quick,
    }
    (cell_dir / "cell.json").write_text(json.dumps(cell, indent=2))
    kind, script = SYSTEMS[system]
    env = dict(
        os.environ,
        OPENAI_API_KEY="dummy",
        PYTHONUNBUFFERED="1",
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        MICROPROMPTS_CACHE=str(cell_dir / "calls.sqlite"),
        DSPY_CACHEDIR=str(cell_dir / "dspy_cache"),
        XDG_CACHE_HOME=str(cell_dir / "xdg_cache"),
        TOKENIZERS_PARALLELISM="false",
        PYTHONPATH=str(REPO),
        MICROPROMPTS_TIMEOUT="900",
        WANDB_MODE="disabled",
        TEXTGRAD_LOG_DIR=str(cell_dir / "textgrad_logs") + "/",
    )
    log_path = work / "logs" / f"{tag}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    error = None
    with open(log_path, "w") as fh:
        proc = subprocess.Popen(
            [str(python_of(kind)), str(HERE / "runners" / script), str(cell_dir / "cell.json")],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=args.cell_timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            error = f"timed out after {args.cell_timeout} s (killed)"
        except BaseException:  # the harness is stopping: take the runner down with it
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    wall = time.time() - started
    time.sleep(0.5)
    stats = proxy_call(args.port, "GET", f"/_stats/{tag}")
    try:
        raw = json.loads(Path(cell["out"]).read_text())
    except Exception:  # noqa: BLE001
        tail = log_path.read_text()[-1500:] if log_path.exists() else ""
        raw = {"status": "failed", "error": error or f"runner exited {proc.returncode} without a result: {tail}"}
    if error:
        raw["status"], raw["error"] = "failed", error
    meta = json.loads((data_dir / "meta.json").read_text())
    test_rows = common.read_jsonl(data_dir / "test.jsonl")
    record = {
        "task": task,
        "system": system,
        "seed": seed,
        "status": raw.get("status", "failed"),
        "error": raw.get("error"),
        "settings": settings,
        "commit": git_commit(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "wall_seconds": round(wall, 1),
        "n_threads": args.threads,
        "config": raw.get("config", {}),
        "dev_score": raw.get("dev_score"),
        "best_prompt": raw.get("best_prompt"),
        "own_view": raw.get("own_view"),
        "log": str(log_path),
        "calls": {role: int(v.get("requests", 0)) for role, v in stats.items()},
        "call_errors": {role: int(v.get("errors", 0)) for role, v in stats.items() if v.get("errors")},
        "tokens": {
            role: {"prompt": int(v.get("prompt_tokens", 0)), "completion": int(v.get("completion_tokens", 0))}
            for role, v in stats.items()
        },
        "server_seconds": {role: round(v.get("seconds", 0.0), 1) for role, v in stats.items()},
        "capped_calls": {role: int(v.get("capped", 0)) for role, v in stats.items() if v.get("capped")},
    }
    predictions = raw.get("predictions")
    if record["status"] == "ok" and predictions is not None:
        scored = common.score_all(meta["metric"], test_rows, predictions)
        record.update(test_score=round(scored["score"], 4), test_n=scored["n"], test_missing=scored["missing"])
        if "em" in scored:
            record.update(test_em=round(scored["em"], 4), test_f1=round(scored["f1"], 4))
        if task == "seats":
            record["test_score_official"] = official_seats(data_dir, predictions)
        (cell_dir / "predictions.json").write_text(json.dumps(predictions, indent=1, ensure_ascii=False))
    if raw.get("traceback"):
        record["traceback"] = raw["traceback"]
    return record


def commit_results(paths: list[Path], message: str) -> None:
    """Commit only the result files (pathspec-limited; retried while another commit holds the index lock)."""
    rel = [str(p.relative_to(REPO)) for p in paths if p.exists()]
    for _ in range(10):
        add = subprocess.run(["git", "add", "--", *rel], cwd=REPO, capture_output=True, text=True)
        if add.returncode == 0:
            done = subprocess.run(
                ["git", "commit", "-q", "-m", message, "--", *rel], cwd=REPO, capture_output=True, text=True
            )
            if done.returncode == 0 or "nothing to commit" in (done.stdout + done.stderr):
                return
            if "index.lock" not in done.stderr:
                log(f"commit failed: {done.stderr.strip()[:200]}")
                return
        time.sleep(5)
    log("commit gave up: the index stayed locked")


def run_seed(
    task: str, seed: int, settings: dict, args: argparse.Namespace, work: Path, ran: dict, save, results_path: Path
) -> None:
    """Every system's cell of one task under one seed (its own train/dev draw), skipping those already done."""
    data_dir = work / "data" / (task if seed == 0 else f"{task}.s{seed}")
    meta = prepare(task, data_dir, args.train_size, args.dev_size, args.test_size, seed)
    log(f"{task} (seed {seed}): {meta['sizes']}")
    for system in args.systems:
        key = cell_key(task, system, seed)
        done = ran.get(key) or load_store(results_path).get("cells", {}).get(key)
        # An "unfinished" record (a cell stopped with a session) documents calls spent, not a result: run it.
        same = done is not None and done.get("settings") == settings and done.get("status") != "unfinished"
        if same and not args.redo and not (args.retry_failed and done.get("status") == "failed"):
            log(f"{key}: done already ({done.get('status')}, score {done.get('test_score')})")
            continue
        log(f"{key}: running")
        record = run_cell(task, system, args, data_dir, work, settings)
        ran[key] = record
        save()
        if args.commit:
            commit_results(
                [results_path, results_path.with_suffix(".md"), results_path.with_suffix(".png")],
                f"benchmarks/results: peers {key} ({record['status']}, test "
                f"{record.get('test_score')}, {record.get('calls', {}).get('task', 0)} task calls)",
            )
        error = f"error: {str(record.get('error'))[:200]}" if record.get("error") else ""
        log(
            f"{key}: {record['status']} score={record.get('test_score')} calls={record.get('calls')} "
            f"wall={record['wall_seconds']}s {error}"
        )


# ------------------------------------------------------------------------------------------------ main
def load_store(path: Path) -> dict:
    """The results file as it is on disk now ({} before the first cell)."""
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", choices=list(TASKS), default=None)
    ap.add_argument("--systems", nargs="+", choices=list(SYSTEMS), default=None)
    ap.add_argument("--budget-calls", type=int, default=None, help="task-model calls each optimizer may spend")
    ap.add_argument("--train-size", type=int, default=None)
    ap.add_argument("--dev-size", type=int, default=None)
    ap.add_argument("--test-size", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="run every cell once per seed (each changes the systems' randomness and the train/dev draw, never the "
        "test rows); the report gives each system's mean and spread (default: --seed alone)",
    )
    ap.add_argument("--quick", action="store_true", help="budget 60, 20 test rows, 2 tasks: prove the harness")
    ap.add_argument("--model", default="qwen-0.5b", help="bench-model name")
    ap.add_argument("--port", type=int, default=8800, help="proxy port (the model server takes PORT+1)")
    ap.add_argument(
        "--threads",
        type=int,
        default=2,
        help="model server threads (1 is ~10x faster than 2 when another process holds the cores)",
    )
    ap.add_argument("--n-ctx", type=int, default=4096)
    ap.add_argument(
        "--max-tokens-cap",
        type=int,
        default=512,
        help="the server-side limit on generated tokens per call, the same for every system",
    )
    ap.add_argument("--concurrency", type=int, default=4, help="requests a system may keep in flight")
    ap.add_argument("--cell-timeout", type=int, default=4 * 3600)
    ap.add_argument("--out", default=None, help="results stem (default benchmarks/results/peers[.quick])")
    ap.add_argument("--work", default=None, help="work folder (default benchmarks/peers/work/<profile>)")
    ap.add_argument("--redo", action="store_true", help="re-run cells that already have a result")
    ap.add_argument("--retry-failed", action="store_true", help="re-run cells recorded as failed")
    ap.add_argument("--commit", action="store_true", help="git-commit the result files after every cell")
    ap.add_argument("--report-only", action="store_true", help="rewrite peers.md / peers.png from peers.json")
    ap.add_argument(
        "--notes",
        type=Path,
        default=None,
        help="a markdown file whose text becomes the report's Notes section (stored in peers.json)",
    )
    args = ap.parse_args(argv)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    profile = "quick" if args.quick else "full"
    args.tasks = args.tasks or (["implicatures", "seats"] if args.quick else DEFAULT_TASKS)
    args.systems = args.systems or DEFAULT_SYSTEMS
    args.budget_calls = args.budget_calls or (60 if args.quick else 300)
    args.train_size = args.train_size or (20 if args.quick else 50)
    args.dev_size = args.dev_size or (10 if args.quick else 30)
    args.test_size = args.test_size or (20 if args.quick else 50)
    args.seeds = list(dict.fromkeys(args.seeds or [args.seed]))
    stem = Path(args.out) if args.out else REPO / "benchmarks" / "results" / ("peers.quick" if args.quick else "peers")
    work = Path(args.work) if args.work else HERE / "work" / profile
    work.mkdir(parents=True, exist_ok=True)
    settings = {
        "budget_calls": args.budget_calls,
        "train": args.train_size,
        "dev": args.dev_size,
        "test": args.test_size,
        "seed": args.seed,
        "model": args.model,
        "n_ctx": args.n_ctx,
        "max_tokens_cap": args.max_tokens_cap,
    }

    results_path = stem if stem.name.endswith(".json") else stem.with_name(stem.name + ".json")
    store = load_store(results_path)
    if args.notes is not None:
        store["notes"] = args.notes.read_text(encoding="utf-8").strip()
    if args.report_only:
        common.write_json(results_path, store)
        report.write_all(results_path, store, python_of("plot"))
        return 0

    for name in PEER_VENVS:
        ensure_venv(name)
    model_path = get_model(args.model)
    log(f"model: {model_path}")
    wait_for_llama_server_package(timeout=3 * 3600)
    servers = Servers(model_path, args.port, work, args.threads, args.n_ctx, args.max_tokens_cap)
    servers.start()

    command = "python benchmarks/peers/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    this_run = {
        "command": command,
        "settings": settings,
        "tasks": args.tasks,
        "systems": args.systems,
        "seeds": args.seeds,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "commit": git_commit(),
    }
    ran: dict[str, dict] = {}

    def save() -> None:
        # Re-read the file and lay only this run's cells over it: a second harness writing the same results
        # (another --port, another --work) loses nothing, and notes edited meanwhile are kept.
        store = load_store(results_path)
        if args.notes is not None:
            store["notes"] = args.notes.read_text(encoding="utf-8").strip()
        store.setdefault("cells", {}).update(ran)
        runs = store.setdefault("runs", [])
        if this_run not in runs:
            runs.append(this_run)
        store.update(
            {
                "title": "microprompts vs SAMMO, DSPy (MIPROv2, GEPA) and TextGrad on one local model",
                "command": command,
                "model": {
                    "name": args.model,
                    "path": Path(model_path).name,
                    "server": "llama_cpp.server",
                    "n_ctx": args.n_ctx,
                    "n_threads": args.threads,
                },
                "machine": f"{os.cpu_count()} CPU cores, no GPU",
                "settings": settings,
                "commit": git_commit(),
                "updated_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
        )
        common.write_json(results_path, store)
        report.write_all(results_path, store, python_of("plot"))

    try:
        for task in args.tasks:
            for seed in args.seeds:
                run_seed(task, seed, {**settings, "seed": seed}, args, work, ran, save, results_path)
        save()
    finally:
        servers.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
