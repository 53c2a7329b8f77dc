"""Issue 3's kill acceptance, through the real CLI and a real HTTP model: `microprompts optimize` killed with SIGKILL
mid-run, then run again with `--resume`, ends with the same best artifact as an uninterrupted run with the same
seed, and the model server is asked no request twice beyond those in flight at the kill.

The model is `openai:fake-model@<fake server>`: the fake OpenAI server runs in this process and answers as the
simulated topic task (tests/optimizers/fake_server_task.py), slowed a little per call so the run can be caught
mid-way. All three processes talk to the same server (the model's URL is part of the run's identity, so a resume
must name the same one); its request count is read between them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.fakes.openai_server import FakeOpenAIServer
from tests.optimizers import engine_helpers as h
from tests.optimizers.fake_server_task import topic_responder

ROOT = Path(__file__).resolve().parents[2]
FLOW = "tests.optimizers.engine_helpers:topic_flow"
CONCURRENCY = 2  # rows run at once: at most this many requests are in flight at the kill
DELAY = 0.02  # seconds per model call


def _write(path: Path, rows: list[Any]) -> str:
    path.write_text("".join(json.dumps(r.model_dump()) + "\n" for r in rows))
    return str(path)


def _command(tmp_path: Path, server: FakeOpenAIServer, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "microprompts.cli",
        "optimize",
        FLOW,
        "--train",
        _write(tmp_path / "train.jsonl", h.rows(0, 16)),
        "--dev",
        _write(tmp_path / "dev.jsonl", h.rows(100, 16)),
        "--test",
        _write(tmp_path / "test.jsonl", h.rows(200, 4)),
        "--metric",
        "exact_match:label",
        "--budget-calls",
        "120",
        "--minibatch",
        "8",
        "--concurrency",
        str(CONCURRENCY),
        "--out",
        str(out),
        "--seed",
        "0",
        "--model",
        f"openai:fake-model@{server.base_url}",
        "--optimizer-model",
        "none",  # the calls counted are task calls: no optimizer model shares the server
        "--no-progress",
        *extra,
    ]


def _env(hash_seed: int) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONHASHSEED": str(hash_seed),
        "NO_PROXY": "127.0.0.1,localhost",
        "MICROPROMPTS_TIMEOUT": "30",
    }


def _finish(command: list[str], hash_seed: int) -> dict[str, Any]:
    done = subprocess.run(command, cwd=ROOT, env=_env(hash_seed), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _journal(out: Path) -> list[str]:
    path = out / "journal.jsonl"
    return path.read_text().splitlines() if path.is_file() else []


def _events(out: Path) -> list[tuple[str, str | None, str | None]]:
    return [(e["event"], e.get("id"), e.get("status")) for e in map(json.loads, _journal(out))]


def _kill_point(reference: Path) -> int:
    """A request count at which the run has journaled a few candidates and is well inside a candidate's evaluation:
    2 * CONCURRENCY requests into one of at least 3 * CONCURRENCY, so at least CONCURRENCY of its requests are
    answered (and cached) and at most CONCURRENCY in flight. Evaluations run one after another, so in a run with the
    same seed the reference's journal and evaluations.jsonl tell when each one starts."""
    journaled = json.loads(_journal(reference)[2])["calls"]  # calls charged when the 3rd journal line was written
    records = [json.loads(line) for line in (reference / "evaluations.jsonl").read_text().splitlines()]
    calls = [record["charge"]["task_calls"] for record in records]
    start = 0
    for n in calls:
        if start >= journaled and n >= 3 * CONCURRENCY:
            return start + 2 * CONCURRENCY
        start += n
    raise AssertionError(f"no evaluation to kill the run in after {journaled} calls: {calls}")


def _kill_at(command: list[str], server: FakeOpenAIServer, requests: int, log: Path) -> None:
    """Start the run and SIGKILL it once the server has received `requests` requests."""
    with log.open("w") as sink:
        proc = subprocess.Popen(command, cwd=ROOT, env=_env(2), stdout=sink, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 90
            while server.calls < requests:
                assert proc.poll() is None, f"the run ended before it could be killed:\n{log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, "the run made no progress"
                time.sleep(0.002)
            proc.send_signal(signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _request_counts(server: FakeOpenAIServer) -> Counter[str]:
    """How many times the server received each distinct request (its whole body: messages and parameters)."""
    return Counter(json.dumps(body, sort_keys=True) for body in server.requests)


def _settled(server: FakeOpenAIServer) -> int:
    """The server's request count once requests the killed process had sent have all been read (0.5 s quiet)."""
    count, since = server.calls, time.monotonic()
    while time.monotonic() - since < 0.5:
        time.sleep(0.05)
        if server.calls != count:
            count, since = server.calls, time.monotonic()
    return count


def test_a_sigkilled_cli_run_resumes_to_the_uninterrupted_result_paying_no_call_twice(tmp_path: Path) -> None:
    with FakeOpenAIServer(topic_responder(delay=DELAY)) as server:
        reference = _finish(_command(tmp_path, server, tmp_path / "a"), 1)
        paid_reference = server.calls
        reference_requests = _request_counts(server)
        assert reference["calls"] == paid_reference > 0 and reference["stopped"], reference
        assert max(reference_requests.values()) == 1

        server.reset()
        killed = tmp_path / "b"
        _kill_at(_command(tmp_path, server, killed), server, _kill_point(tmp_path / "a"), tmp_path / "killed.log")
        paid_before_kill = _settled(server)
        assert not (killed / "best.json").exists(), "the run finished before the kill"
        assert 3 <= len(_journal(killed)) < len(_journal(tmp_path / "a")), "the kill should land mid-run"

        resumed = _finish(_command(tmp_path, server, killed, "--resume"), 3)
        paid_total = server.calls
        requests = _request_counts(server)
        assert server.errors == []

    assert (killed / "best.json").read_text() == (tmp_path / "a" / "best.json").read_text()
    assert resumed["best_id"] == reference["best_id"]
    assert (resumed["best_dev"], resumed["best_test"]) == (reference["best_dev"], reference["best_test"])
    assert _events(killed) == _events(tmp_path / "a")
    assert resumed["calls"] == paid_total - paid_before_kill
    # The same requests as the uninterrupted run, each paid once, but for those in flight at the kill (sent, not
    # yet answered and cached), which the resumed run sends again.
    print(f"paid: reference {paid_reference}, before the kill {paid_before_kill}, killed + resumed {paid_total}")
    assert set(requests) == set(reference_requests)
    twice = sorted(n for n in requests.values() if n > 1)
    assert twice == [2] * len(twice) and len(twice) <= CONCURRENCY, twice
    assert paid_total == paid_reference + len(twice)
