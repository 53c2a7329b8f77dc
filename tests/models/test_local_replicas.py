"""The embedded model with replicas: N llama.cpp instances (a fake llama_cpp here), each with its own threads, so N
calls run at once instead of queueing behind one lock; one replica stays today's single instance."""

from __future__ import annotations

import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from microprompts.models import local
from microprompts.models.local import LocalChatModel


class FakeLlama:
    """Stands in for llama_cpp.Llama: records its instances; calls wait on `gate` (a barrier) when one is set."""

    made: list[FakeLlama] = []
    gate: threading.Barrier | None = None

    loading = 0  # loads in progress: llama.cpp ends the process when two overlap
    overlapped = False

    def __init__(self, model_path: str, n_ctx: int, n_threads: int, verbose: bool, seed: int) -> None:
        FakeLlama.loading += 1
        FakeLlama.overlapped |= FakeLlama.loading > 1
        time.sleep(0.05)
        FakeLlama.loading -= 1
        self.n_threads = n_threads
        self.calls = 0
        FakeLlama.made.append(self)

    def create_chat_completion(self, messages: list[dict[str, str]], **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        if FakeLlama.gate is not None:
            FakeLlama.gate.wait()  # every caller in at once: impossible if they queue behind one lock
        usage = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
        return {"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}], "usage": usage}

    def close(self) -> None:
        pass


@pytest.fixture
def gguf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(sys.modules, "llama_cpp", types.SimpleNamespace(Llama=FakeLlama))
    monkeypatch.setattr(local, "_LOADED", {})
    monkeypatch.setattr(FakeLlama, "made", [])
    monkeypatch.setattr(FakeLlama, "gate", None)
    monkeypatch.setattr(FakeLlama, "overlapped", False)
    monkeypatch.delenv("MICROPROMPTS_THREADS", raising=False)
    monkeypatch.delenv("MICROPROMPTS_REPLICAS", raising=False)
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF")
    return str(path)


def _call_at_once(model: LocalChatModel, n: int) -> list[str]:
    replies: list[str] = []
    threads = [
        threading.Thread(target=lambda: replies.append(str(model.invoke([HumanMessage("hi")]).content)))
        for _ in range(n)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return replies


def test_two_replicas_answer_two_calls_at_once(gguf: str) -> None:
    FakeLlama.gate = threading.Barrier(2, timeout=30)
    model = LocalChatModel(model_path=gguf, n_threads=1, replicas=2)
    assert _call_at_once(model, 2) == ["ok", "ok"]
    assert len(FakeLlama.made) == 2 and [m.calls for m in FakeLlama.made] == [1, 1]
    assert [m.n_threads for m in FakeLlama.made] == [1, 1]
    assert not FakeLlama.overlapped  # the two replicas were loaded one after the other


def test_replicas_are_loaded_one_at_a_time(gguf: str) -> None:
    model = LocalChatModel(model_path=gguf, n_threads=1, replicas=4)
    assert _call_at_once(model, 8) == ["ok"] * 8
    assert 1 <= len(FakeLlama.made) <= 4 and not FakeLlama.overlapped


def test_one_replica_is_one_instance_and_replicas_share_the_cores(gguf: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 9)
    for _ in range(3):
        LocalChatModel(model_path=gguf).invoke([HumanMessage("hi")])
    assert len(FakeLlama.made) == 1 and FakeLlama.made[0].n_threads == 8  # all cores but one, as before
    monkeypatch.setenv("MICROPROMPTS_REPLICAS", "2")
    FakeLlama.gate = threading.Barrier(2, timeout=30)
    _call_at_once(LocalChatModel(model_path=gguf), 2)
    assert [m.n_threads for m in FakeLlama.made[1:]] == [4, 4]  # (9 - 1) cores shared by 2 replicas
    assert LocalChatModel(model_path=gguf).identity() == LocalChatModel(model_path=gguf, replicas=3).identity()
