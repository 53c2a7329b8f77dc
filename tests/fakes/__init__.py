"""Test fakes: a fake OpenAI-compatible server with scheduled faults, and a real llama.cpp server helper."""

from tests.fakes.llama_server import (
    find_smollm2_gguf,
    free_port,
    llama_server,
    llama_server_unavailable_reason,
)
from tests.fakes.openai_server import (
    FAULT_KINDS,
    CallRecord,
    FakeOpenAIServer,
    FaultSchedule,
    Responder,
    default_responder,
    json_responder,
    last_user_message,
    request_key,
)

__all__ = [
    "FAULT_KINDS",
    "CallRecord",
    "FakeOpenAIServer",
    "FaultSchedule",
    "Responder",
    "default_responder",
    "find_smollm2_gguf",
    "free_port",
    "json_responder",
    "last_user_message",
    "llama_server",
    "llama_server_unavailable_reason",
    "request_key",
]
