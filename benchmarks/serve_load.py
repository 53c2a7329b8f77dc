"""Load on the served seat agent: N requests at concurrency K over real HTTP, per model; throughput, p50/p90/p99
latency, errors. Prints a table and writes benchmarks/results/serve_load.json.

    .venv/bin/python benchmarks/serve_load.py                       # fake 1000@16, fake-openai 1000@16, local 40@4
    .venv/bin/python benchmarks/serve_load.py --scenario fake:1000:16 --scenario local:40:4
    .venv/bin/python benchmarks/serve_load.py --abuse      # 1000 mixed good and bad requests at 16, fake model

Models: `fake` (an instant in-process chat model injected through create_app), `fake-openai` (`microprompts
serve --model openai:fake@URL` against the fake OpenAI-compatible server of tests/fakes, in this process),
`local` (the embedded SmolLM2 through llama.cpp), or any other model spec. The server runs as a subprocess
with max_concurrency = K, so any 503 counts as an error; requests cycle through the seat dev rows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_FLOW = "examples/seats/flow.py:flow"
DEFAULT_DATA = "examples/seats/data/dev.jsonl"
DEFAULT_SCENARIOS = ["fake:1000:16", "fake-openai:1000:16", "local:40:4"]
SERVERS: list[int] = []


@dataclass
class Result:
    """One scenario's figures."""

    model: str
    requests: int
    concurrency: int
    ok: int = 0
    client_errors: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    seconds: float = 0.0
    throughput_rps: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    warmup_s: float = 0.0
    startup_s: float = 0.0
    runs_stored: int = 0
    load_avg_1m: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered) + 0.5)) - 1))]


def load_inputs(data: str) -> list[dict[str, Any]]:
    """The seat rows' inputs (a synthetic one when the data file is missing)."""
    from microprompts.data import Dataset

    if Path(data).is_file():
        return [dict(row.inputs) for row in Dataset.load(data)]
    return [{"preferences": "window, near the front", "available_seats": ["economy_14A_window", "economy_14C_aisle"]}]


def serve_fake(args: argparse.Namespace) -> None:
    """Internal mode: serve the flow with the instant fake model injected through create_app."""
    import uvicorn

    from microprompts.flows.refs import load_flow_ref
    from microprompts.serve.app import create_app
    from microprompts.serve.settings import ServeSettings, key_from_env
    from tests.serve.helpers import InstantChatModel

    flow = load_flow_ref(args.flow)
    settings = ServeSettings(
        max_concurrency=args.max_concurrency,
        max_body_bytes=args.max_body_bytes,
        timeout=args.timeout or None,
        api_key=key_from_env(),
    )
    app = create_app(
        flow, model=InstantChatModel.for_flow(flow, hang_seconds=args.hang), store=args.store, settings=settings
    )
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


def start_server(
    model: str,
    flow: str,
    port: int,
    concurrency: int,
    store: Path,
    stack: ExitStack,
    log: Path,
    extra: tuple[list[str], dict[str, str]] = ([], {}),
) -> float:
    """Start the agent server for `model` (fake: with `extra` arguments and environment); returns seconds until
    /health answered."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "MICROPROMPTS_CACHE": "off", **extra[1]}
    common = ["--port", str(port), "--max-concurrency", str(concurrency), "--store", str(store)]
    if model == "fake":
        command = [sys.executable, __file__, "--serve-fake", "--flow", flow, *common, *extra[0]]
    else:
        spec = model
        if model == "fake-openai":
            from tests.fakes import FakeOpenAIServer
            from tests.serve.helpers import schema_responder

            fake = stack.enter_context(FakeOpenAIServer(schema_responder()))
            spec = f"openai:fake@{fake.base_url}"
        command = [
            sys.executable,
            "-m",
            "microprompts.cli",
            "serve",
            flow,
            "--model",
            spec,
            "--no-access-log",
            "--log-level",
            "warning",
            *common,
        ]
    handle = stack.enter_context(open(log, "w", encoding="utf-8"))
    proc = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=str(REPO))
    SERVERS.append(proc.pid)
    stack.callback(lambda: (proc.terminate(), proc.wait(timeout=30)))
    started = time.perf_counter()
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            time.sleep(0.1)
        if time.perf_counter() - started > 120:
            raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")


async def drive(base: str, inputs: list[dict[str, Any]], n: int, k: int, result: Result) -> None:
    """Send n requests with k workers; fill the result's counters and latencies."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    next_index = 0
    limits = httpx.Limits(max_connections=k, max_keepalive_connections=k)
    async with httpx.AsyncClient(base_url=base, timeout=600, limits=limits) as client:

        async def worker() -> None:
            nonlocal next_index
            while next_index < n:
                i = next_index
                next_index += 1
                started = time.perf_counter()
                try:
                    response = await client.post("/invoke", json={"input": inputs[i % len(inputs)]})
                    status = str(response.status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[status] = statuses.get(status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(k)))
        result.seconds = time.perf_counter() - started
    result.statuses = dict(sorted(statuses.items()))
    result.ok = statuses.get("200", 0)
    result.client_errors = sum(v for s, v in statuses.items() if s.isdigit() and 400 <= int(s) < 500)
    result.server_errors = sum(v for s, v in statuses.items() if s.isdigit() and int(s) >= 500)
    result.transport_errors = sum(v for s, v in statuses.items() if not s.isdigit())
    result.throughput_rps = n / result.seconds if result.seconds else 0.0
    result.p50_ms, result.p90_ms = percentile(latencies, 50), percentile(latencies, 90)
    result.p99_ms, result.max_ms = percentile(latencies, 99), max(latencies, default=0.0)


def run_scenario(model: str, n: int, k: int, flow: str, inputs: list[dict[str, Any]], port: int) -> Result:
    """Start a server, warm it up, drive the load, count the stored runs."""
    from microprompts.serve import RunStore

    result = Result(model=model, requests=n, concurrency=k)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        store = Path(tmp) / "runs.sqlite"
        result.startup_s = start_server(model, flow, port, k, store, stack, Path(tmp) / "server.log")
        base = f"http://127.0.0.1:{port}"
        started = time.perf_counter()
        warm = httpx.post(f"{base}/invoke", json={"input": inputs[0]}, timeout=600)
        result.warmup_s = time.perf_counter() - started
        if warm.status_code != 200:
            raise RuntimeError(f"warm-up request failed: {warm.status_code} {warm.text[:300]}")
        asyncio.run(drive(base, inputs, n, k, result))
        result.load_avg_1m = round(os.getloadavg()[0], 2)  # how busy the machine was (other processes included)
        stack.close()
        result.runs_stored = RunStore(store).count() - 1  # minus the warm-up run
    return result


def table(results: list[Result]) -> str:
    """The results as a fixed-width table."""
    head = (
        f"{'model':<12} {'n':>5} {'K':>3} {'ok':>5} {'4xx':>4} {'5xx':>4} {'conn':>4} {'req/s':>8} "
        f"{'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'stored':>6}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.model:<12} {r.requests:>5} {r.concurrency:>3} {r.ok:>5} {r.client_errors:>4} "
            f"{r.server_errors:>4} {r.transport_errors:>4} {r.throughput_rps:>8.1f} {r.p50_ms:>8.1f} "
            f"{r.p90_ms:>8.1f} {r.p99_ms:>8.1f} {r.max_ms:>8.1f} {r.runs_stored:>6}"
        )
    return "\n".join(lines)


ABUSE_KEY = "abuse-bench-key-0123456789abcdef"
ABUSE_KINDS = {  # kind: (share of 40 requests, the statuses it should get)
    "valid": (18, {"200"}),
    "batch": (2, {"200"}),
    "malformed": (3, {"422"}),
    "invalid": (3, {"422"}),
    "oversized": (2, {"413"}),
    "wrong_type": (3, {"415"}),
    "wrong_host": (2, {"400"}),
    "no_key": (2, {"401"}),
    "wrong_key": (1, {"401"}),
    "runs_page": (3, {"200"}),
    "hang": (1, {"504"}),
}


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident memory (VmHWM), in MB; 0 where /proc is missing."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


async def abuse(base: str, inputs: list[dict[str, Any]], n: int, k: int) -> dict[str, Any]:
    """Send n mixed requests with k workers; per kind: statuses and latencies; the run ids answered."""
    from tests.serve.helpers import HANG_MARKER

    plan = [kind for kind, (share, _) in ABUSE_KINDS.items() for _ in range(share)]
    auth = {"authorization": f"Bearer {ABUSE_KEY}"}
    stats: dict[str, dict[str, int]] = {kind: {} for kind in ABUSE_KINDS}
    latencies: dict[str, list[float]] = {kind: [] for kind in ABUSE_KINDS}
    run_ids: list[str] = []
    cursor: list[str | None] = [None]
    next_index = 0

    async def send(client: httpx.AsyncClient, kind: str, i: int) -> httpx.Response:
        one = inputs[i % len(inputs)]
        if kind == "valid":
            return await client.post("/invoke", json={"input": one}, headers=auth)
        if kind == "batch":
            return await client.post("/batch", json={"inputs": [one, inputs[(i + 1) % len(inputs)]]}, headers=auth)
        if kind == "malformed":
            return await client.post(
                "/invoke", content=b'{"input": {"preferences": ', headers={**auth, "content-type": "application/json"}
            )
        if kind == "invalid":
            return await client.post("/invoke", json={"input": {"preferences": 1}, "extra": True}, headers=auth)
        if kind == "oversized":
            return await client.post("/invoke", json={"input": {**one, "preferences": "x" * 200_000}}, headers=auth)
        if kind == "wrong_type":
            return await client.post(
                "/invoke", content=json.dumps({"input": one}), headers={**auth, "content-type": "text/plain"}
            )
        if kind == "wrong_host":
            return await client.post("/invoke", json={"input": one}, headers={**auth, "host": "rebound.example"})
        if kind == "no_key":
            return await client.post("/invoke", json={"input": one})
        if kind == "wrong_key":
            return await client.post("/invoke", json={"input": one}, headers={"authorization": "Bearer guess" * 4})
        if kind == "runs_page":
            params = {"limit": 1000, **({"before": cursor[0]} if cursor[0] else {})}
            response = await client.get("/runs", params=params, headers=auth)
            if response.status_code == 200:
                cursor[0] = response.json()["next"]
            return response
        return await client.post("/invoke", json={"input": {**one, "preferences": HANG_MARKER}}, headers=auth)

    limits = httpx.Limits(max_connections=k, max_keepalive_connections=k)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:

        async def worker() -> None:
            nonlocal next_index
            while next_index < n:
                i = next_index
                next_index += 1
                kind = plan[i % len(plan)]
                started = time.perf_counter()
                try:
                    response = await send(client, kind, i)
                    status = str(response.status_code)
                    body = (
                        response.json()
                        if response.headers.get("content-type", "").startswith("application/json")
                        else {}
                    )
                    if kind in ("valid", "hang") and isinstance(body, dict):
                        found = body.get("run_id") or (body.get("error") or {}).get("run_id")
                        run_ids.extend([found] if found else [])
                    if kind == "batch" and status == "200":
                        run_ids.extend(r["run_id"] for r in body["results"] if r.get("run_id"))
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                latencies[kind].append((time.perf_counter() - started) * 1000)
                stats[kind][status] = stats[kind].get(status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(k)))
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "stats": stats, "latencies": latencies, "run_ids": run_ids}


def run_abuse(flow: str, inputs: list[dict[str, Any]], out: Path, n: int = 1000, k: int = 16) -> int:
    """Start a fake-model server with an API key and a 1 s deadline, send the mixed load, check the answers and
    the store; print a table, write the JSON; exit 1 on any server error or run not stored exactly once."""
    import sqlite3

    from tests.fakes import free_port

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        store = Path(tmp) / "runs.sqlite"
        extra = (
            ["--max-body-bytes", "100000", "--timeout", "1.0", "--hang", "1.5"],
            {"MICROPROMPTS_API_KEY": ABUSE_KEY},
        )
        startup = start_server("fake", flow, port, 2 * k, store, stack, Path(tmp) / "server.log", extra)
        pid = SERVERS[-1]
        rss_idle = peak_rss_mb(pid)
        got = asyncio.run(abuse(f"http://127.0.0.1:{port}", inputs, n, k))
        deadline = time.monotonic() + 30
        while httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()["active"] and time.monotonic() < deadline:
            time.sleep(0.1)  # the hung workers end after their 504s
        rss_peak = peak_rss_mb(pid)
        stack.close()
        with sqlite3.connect(store) as conn:
            stored = [r[0] for r in conn.execute("SELECT id FROM runs").fetchall()]
            timed_out = conn.execute("SELECT COUNT(*) FROM runs WHERE error LIKE 'timeout%'").fetchone()[0]
        server_log = (Path(tmp) / "server.log").read_text()
    ids = got["run_ids"]
    rows = []
    for kind, (_, expected) in ABUSE_KINDS.items():
        statuses = got["stats"][kind]
        values = got["latencies"][kind]
        rows.append(
            {
                "kind": kind,
                "requests": sum(statuses.values()),
                "statuses": dict(sorted(statuses.items())),
                "as_expected": sum(v for s, v in statuses.items() if s in expected),
                "p50_ms": round(percentile(values, 50), 1),
                "p99_ms": round(percentile(values, 99), 1),
            }
        )
    server_errors = sum(
        v for r in rows for s, v in r["statuses"].items() if s.isdigit() and int(s) >= 500 and s not in ("503", "504")
    )
    transport = sum(v for r in rows for s, v in r["statuses"].items() if not s.isdigit())
    report = {
        "benchmark": "serve_abuse",
        "flow": flow,
        "requests": n,
        "concurrency": k,
        "model": "instant fake (hangs 1.5 s on the marker)",
        "server": {"max_concurrency": 2 * k, "max_body_bytes": 100_000, "timeout_s": 1.0, "api_key": True},
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(got["seconds"], 2),
        "startup_s": round(startup, 2),
        "server_errors": server_errors,
        "transport_errors": transport,
        "answered_run_ids": len(ids),
        "distinct_run_ids": len(set(ids)),
        "runs_stored": len(stored),
        "stored_once": len(stored) == len(set(stored)) and set(stored) == set(ids) and len(ids) == len(set(ids)),
        "timed_out_stored": timed_out,
        "peak_rss_mb": round(rss_peak, 1),
        "rss_after_start_mb": round(rss_idle, 1),
        "key_in_server_log": ABUSE_KEY in server_log,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        },
        "kinds": rows,
    }
    head = f"{'kind':<11} {'n':>5} {'expected':>8} {'p50 ms':>8} {'p99 ms':>8}  statuses"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['kind']:<11} {r['requests']:>5} {r['as_expected']:>8} {r['p50_ms']:>8.1f} "
            f"{r['p99_ms']:>8.1f}  {r['statuses']}"
        )
    lines.append(
        f"server errors {server_errors}, transport errors {transport}, runs answered {len(ids)}, stored "
        f"{len(stored)} (each once: {report['stored_once']}), timed out {timed_out}, peak RSS "
        f"{rss_peak:.0f} MB (after start {rss_idle:.0f} MB), {got['seconds']:.1f} s"
    )
    print("\n".join(lines))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}", file=sys.stderr)
    return 0 if server_errors == 0 and transport == 0 and report["stored_once"] else 1


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios, print the table, write the JSON; exit 1 if any request failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenario", action="append", help="MODEL:N:K (repeatable); default: " + " ".join(DEFAULT_SCENARIOS)
    )
    parser.add_argument("--flow", default=DEFAULT_FLOW)
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "serve_load.json"))
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="llama.cpp threads of the embedded model (sets MICROPROMPTS_THREADS for the server)",
    )
    parser.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--max-concurrency", type=int, default=16, help=argparse.SUPPRESS)
    parser.add_argument("--store", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--max-body-bytes", type=int, default=1_000_000, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=120.0, help=argparse.SUPPRESS)
    parser.add_argument("--hang", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--abuse",
        action="store_true",
        help="1000 mixed requests at concurrency 16 (valid, malformed, oversized, wrong type, wrong "
        "host, no key, /runs pages, past the deadline); writes serve_abuse.json",
    )
    args = parser.parse_args(argv)
    if args.serve_fake:
        serve_fake(args)
        return 0
    if args.abuse:
        return run_abuse(args.flow, load_inputs(args.data), REPO / "benchmarks" / "results" / "serve_abuse.json")
    from microprompts.models.local import default_threads
    from tests.fakes import free_port

    if args.threads is not None:
        os.environ["MICROPROMPTS_THREADS"] = str(args.threads)
    inputs = load_inputs(args.data)
    results = []
    for spec in args.scenario or DEFAULT_SCENARIOS:
        model, n, k = spec.rsplit(":", 2)
        print(f"{model}: {n} requests at concurrency {k} ...", file=sys.stderr, flush=True)
        results.append(run_scenario(model, int(n), int(k), args.flow, inputs, free_port()))
        print(table(results[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(table(results))
    report = {
        "benchmark": "serve_load",
        "flow": args.flow,
        "data": args.data,
        "endpoint": "POST /invoke",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "llama_threads": default_threads(),
        },
        "results": [asdict(r) for r in results],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 1 if any(r.ok != r.requests for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
