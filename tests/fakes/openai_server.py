"""A fake OpenAI-compatible chat-completions server for fault and client tests.

Standard library only (``http.server.ThreadingHTTPServer`` in a background thread on 127.0.0.1, on a
free port), so it works without the serve extras::

    with FakeOpenAIServer(json_responder(lambda req: {"label": "x"}),
                          faults=FaultSchedule(rate=0.3, kinds=["429", "500"], seed=1)) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="fake")
        ...
        assert srv.calls >= 1

How faults are scheduled
------------------------
Every chat-completions call is given a *request key* (a SHA-256 of the canonical JSON of the request's
``messages``; see ``FaultSchedule.key_fields``) and an *attempt number*: how many earlier calls carried
the same key (0 for the first). The fault for a call is then a pure function of the schedule and either

* ``(seed, key, attempt)`` for the random (``rate``/``kinds``/``seed``) and ``per_attempt`` schedules, so
  the outcome does not depend on how concurrent calls interleave, and a *retry* of the same request is
  a new attempt that may succeed (``max_faults_per_key`` bounds how many attempts of one request can
  fail), or
* the global call index for an explicit ``FaultSchedule.sequence([...])`` (simple, ordered tests).

Fault kinds
-----------
``"429"`` rate limited (``Retry-After`` header, ``"0"`` by default), ``"500"`` server error, ``"hang"``
(sleep ``hang_seconds`` before answering normally: the client's timeout should fire first),
``"truncate"`` (``finish_reason="length"``, content cut in half), ``"garbage"`` (content that is not
JSON), ``"schema"`` (valid JSON that violates any useful schema: ``{"unexpected": 1}``),
``"malformed_body"`` (HTTP 200, ``Content-Type: application/json``, a body that is not JSON).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

Responder = Callable[[dict[str, Any]], str]
# The `logprobs.content` list answering a request that asks for log-probabilities, given the request and the reply.
Logprober = Callable[[dict[str, Any], str], list[dict[str, Any]]]

FAULT_KINDS: tuple[str, ...] = ("429", "500", "hang", "truncate", "garbage", "schema", "malformed_body")
GARBAGE_CONTENT = "Sure! Here is my answer: label = sports (I think) {not json"
SCHEMA_VIOLATION_CONTENT = '{"unexpected": 1}'
# What llama_cpp.server 0.3.36 answers (HTTP 500, type internal_server_error) to response_format json_schema:
# its request model only allows "text" and "json_object" (a "schema" key is accepted next to json_object).
JSON_SCHEMA_REJECTION_MESSAGE = (
    "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
    "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema', "
    "'ctx': {'expected': \"'text' or 'json_object'\"}}"
)
MALFORMED_BODY = b'{"id": "chatcmpl-broken", "choices": [ this is not json'


def default_responder(request: dict[str, Any]) -> str:
    """Answer every request with the empty JSON object ``"{}"``."""
    return "{}"


def json_responder(obj_fn: Callable[[dict[str, Any]], Mapping[str, Any]]) -> Responder:
    """Build a responder returning ``json.dumps(obj_fn(request))``."""

    def respond(request: dict[str, Any]) -> str:
        return json.dumps(obj_fn(request))

    return respond


def last_user_message(request: dict[str, Any]) -> str:
    """Return the text of the last user message of a chat request ("" if none)."""
    for message in reversed(request.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):  # content parts
                return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def request_key(request: Mapping[str, Any], fields: Sequence[str] = ("messages",)) -> str:
    """Stable SHA-256 hex key of the given request fields (canonical JSON)."""
    payload = {name: request.get(name) for name in fields}
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _unit(*parts: object) -> float:
    """Deterministic uniform number in [0, 1) from the given parts (process-independent)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


@dataclass
class FaultSchedule:
    """Deterministic plan of which calls get which fault (see the module docstring)."""

    rate: float = 0.0
    kinds: Sequence[str] = FAULT_KINDS
    seed: int = 0
    # Explicit per-call faults (None = answer normally); indexed by the global call index when
    # ``by_attempt`` is False, by the attempt number for the request's key when True. Calls past the
    # end of the list are answered normally.
    explicit: Sequence[str | None] | None = None
    by_attempt: bool = False
    # At most this many faulty attempts per request key, then always succeed (None: no bound).
    max_faults_per_key: int | None = None
    # Value of the Retry-After header on 429 answers (None: no header).
    retry_after: str | None = "0"
    hang_seconds: float = 5.0
    key_fields: tuple[str, ...] = ("messages",)

    def __post_init__(self) -> None:
        """Validate the fault kinds and the rate."""
        unknown = [k for k in [*self.kinds, *(self.explicit or [])] if k is not None and k not in FAULT_KINDS]
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}; known: {list(FAULT_KINDS)}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be in [0, 1], got {self.rate}")
        if self.rate > 0 and not self.kinds:
            raise ValueError("rate > 0 needs at least one fault kind")

    @classmethod
    def none(cls) -> FaultSchedule:
        """A schedule that never injects a fault."""
        return cls()

    @classmethod
    def sequence(cls, faults: Iterable[str | None], **kwargs: Any) -> FaultSchedule:
        """Explicit faults by global call index: ``sequence(["429", None])`` = first call 429, then OK."""
        return cls(explicit=list(faults), by_attempt=False, **kwargs)

    @classmethod
    def per_attempt(cls, faults: Iterable[str | None], **kwargs: Any) -> FaultSchedule:
        """Explicit faults by attempt number of each distinct request: ``["500"]`` = every first try fails."""
        return cls(explicit=list(faults), by_attempt=True, **kwargs)

    def decide(self, key: str, attempt: int, call_index: int) -> str | None:
        """Return the fault kind for this call, or None to answer normally."""
        if self.max_faults_per_key is not None and attempt >= self.max_faults_per_key:
            return None
        if self.explicit is not None:
            index = attempt if self.by_attempt else call_index
            return self.explicit[index] if index < len(self.explicit) else None
        if self.rate <= 0.0:
            return None
        if _unit(self.seed, key, attempt, "fault") >= self.rate:
            return None
        kinds = list(self.kinds)
        return kinds[int(_unit(self.seed, key, attempt, "kind") * len(kinds))]


def _count_tokens(text: str) -> int:
    """Crude token count (whitespace words) for the usage block."""
    return len(text.split())


def _message_text(messages: Any) -> str:
    """Concatenate the text of all messages for token counting."""
    parts: list[str] = []
    for message in messages or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p.get("text", "") for p in content if isinstance(p, dict))
    return " ".join(parts)


def openai_error(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """Build an OpenAI-style error body."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class _Handler(BaseHTTPRequestHandler):
    """Request handler; all state lives on the owning ``FakeOpenAIServer``."""

    server_version = "FakeOpenAI/0.1"
    fake: FakeOpenAIServer  # set on a per-server subclass

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    # -- helpers -----------------------------------------------------------------------------------
    def _send_bytes(
        self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> None:
        """Send a complete response, ignoring a client that already hung up."""
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # client gave up (e.g. its timeout fired)
            pass

    def _send_json(self, status: int, obj: Any, headers: Mapping[str, str] | None = None) -> None:
        """Send ``obj`` as a JSON response."""
        self._send_bytes(status, json.dumps(obj).encode("utf-8"), "application/json", headers)

    # -- routes ------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        """Serve ``GET /v1/models``."""
        self.fake._count_http()
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in ("/v1/models", "/models"):
            self._send_json(200, self.fake.models_payload())
        elif path in ("/health", "/v1/health"):
            self._send_json(200, {"status": "ok"})
        else:
            self._send_json(404, openai_error(f"no route {self.path}", "invalid_request_error", "not_found"))

    def do_POST(self) -> None:
        """Serve ``POST /v1/chat/completions``."""
        self.fake._count_http()
        path = self.path.split("?", 1)[0].rstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if path not in ("/v1/chat/completions", "/chat/completions"):
            self._send_json(404, openai_error(f"no route {self.path}", "invalid_request_error", "not_found"))
            return
        try:
            request = json.loads(raw or b"null")
            if not isinstance(request, dict):
                raise ValueError("request body must be a JSON object")
        except ValueError as exc:
            self._send_json(400, openai_error(f"invalid JSON body: {exc}", "invalid_request_error"))
            return
        self.fake._handle_chat(self, request)


class _HTTPServer(ThreadingHTTPServer):
    """Threading HTTP server with daemon handler threads and a listen backlog fit for concurrency tests."""

    daemon_threads = True
    request_queue_size = 256  # the default 5 drops SYNs under concurrent load (1 s retransmit stalls)


class FakeOpenAIServer:
    """Fake OpenAI-compatible chat server on 127.0.0.1 in a background thread (context manager)."""

    def __init__(
        self,
        responder: Responder | None = None,
        faults: FaultSchedule | None = None,
        *,
        model: str = "fake-model",
        reject_json_schema: bool = False,
        reject_status: int = 500,
        logprobs: Logprober | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        """Configure the server; it starts on ``start()`` or on entering the ``with`` block.

        ``reject_json_schema=True`` answers ``response_format={"type": "json_schema", ...}`` the way
        ``llama_cpp.server`` 0.3.36 does: HTTP ``reject_status`` (500 there, so the openai client retries
        it; pass 400 for a strict OpenAI-style server) with a message naming ``'text' or 'json_object'``.
        ``logprobs`` gives the ``logprobs.content`` of a reply to a request with ``"logprobs": true``.
        """
        self.responder: Responder = responder or default_responder
        self.faults: FaultSchedule = faults or FaultSchedule()
        self.model = model
        self.reject_json_schema = reject_json_schema
        self.reject_status = reject_status
        self.logprobs = logprobs
        self._host = host
        self._requested_port = port
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._calls = 0
        self._http_calls = 0
        self._faults_served: dict[str, int] = {}
        self._requests: list[dict[str, Any]] = []
        self._response_formats: list[Any] = []
        self._attempts: dict[str, int] = {}
        self._log: list[CallRecord] = []
        self._errors: list[str] = []

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> FakeOpenAIServer:
        """Bind a free port and start serving in a daemon thread."""
        if self._httpd is not None:
            return self
        handler = type("_BoundHandler", (_Handler,), {"fake": self})
        httpd = _HTTPServer((self._host, self._requested_port), handler)
        self._httpd = httpd
        self._stopping.clear()
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake hanging handlers and close the socket."""
        self._stopping.set()
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        """Start the server."""
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop the server."""
        self.stop()

    # -- addresses ---------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The bound TCP port (server must be started)."""
        if self._httpd is None:
            raise RuntimeError("FakeOpenAIServer is not running")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI base URL, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    # -- counters (thread-safe snapshots) ----------------------------------------------------------
    @property
    def calls(self) -> int:
        """Chat-completions HTTP calls received (faulted and rejected ones included)."""
        with self._lock:
            return self._calls

    @property
    def http_calls(self) -> int:
        """All HTTP requests received (``GET /v1/models`` and unknown routes included)."""
        with self._lock:
            return self._http_calls

    def _count_http(self) -> None:
        """Count one HTTP request of any kind."""
        with self._lock:
            self._http_calls += 1

    @property
    def faults_served(self) -> dict[str, int]:
        """Faults served so far, kind -> count."""
        with self._lock:
            return dict(self._faults_served)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Received chat request bodies, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def response_formats(self) -> list[Any]:
        """The ``response_format`` of each received request (None when absent)."""
        with self._lock:
            return list(self._response_formats)

    @property
    def log(self) -> list[CallRecord]:
        """Per-call records: index, key, attempt, fault and HTTP status."""
        with self._lock:
            return list(self._log)

    @property
    def errors(self) -> list[str]:
        """Exceptions raised by the responder (answered as HTTP 500)."""
        with self._lock:
            return list(self._errors)

    @property
    def successes(self) -> int:
        """Calls answered with a normal, well-formed completion."""
        with self._lock:
            return sum(1 for r in self._log if r.fault is None and r.status == 200)

    def reset(self) -> None:
        """Forget all counters, recorded requests and attempt numbers."""
        with self._lock:
            self._calls = 0
            self._http_calls = 0
            self._faults_served.clear()
            self._requests.clear()
            self._response_formats.clear()
            self._attempts.clear()
            self._log.clear()
            self._errors.clear()

    def models_payload(self) -> dict[str, Any]:
        """Body of ``GET /v1/models``."""
        return {
            "object": "list",
            "data": [{"id": self.model, "object": "model", "created": 0, "owned_by": "microprompts-fake"}],
        }

    # -- chat --------------------------------------------------------------------------------------
    def _handle_chat(self, handler: _Handler, request: dict[str, Any]) -> None:
        """Record the call, decide its fault and answer."""
        response_format = request.get("response_format")
        key = request_key(request, self.faults.key_fields)
        with self._lock:
            call_index = self._calls
            self._calls += 1
            attempt = self._attempts.get(key, 0)
            self._attempts[key] = attempt + 1
            self._requests.append(request)
            self._response_formats.append(response_format)
        record = CallRecord(index=call_index, key=key, attempt=attempt)

        if (
            self.reject_json_schema
            and isinstance(response_format, dict)
            and response_format.get("type") == "json_schema"
        ):
            record.status = self.reject_status
            self._finish(record)
            body = openai_error(
                JSON_SCHEMA_REJECTION_MESSAGE,
                "internal_server_error" if self.reject_status >= 500 else "invalid_request_error",
                param="response_format" if self.reject_status < 500 else None,
            )
            handler._send_json(self.reject_status, body)
            return

        fault = self.faults.decide(key, attempt, call_index)
        record.fault = fault
        if fault == "429":
            record.status = 429
            self._finish(record)
            headers = {} if self.faults.retry_after is None else {"Retry-After": self.faults.retry_after}
            body = openai_error("Rate limit reached (fake)", "requests", code="rate_limit_exceeded")
            handler._send_json(429, body, headers)
            return
        if fault == "500":
            record.status = 500
            self._finish(record)
            handler._send_json(500, openai_error("Internal server error (fake)", "server_error"))
            return
        if fault == "malformed_body":
            record.status = 200
            self._finish(record)
            handler._send_bytes(200, MALFORMED_BODY, "application/json")
            return
        if fault == "hang":
            # Counted before sleeping so tests can see it while the client is still waiting.
            record.status = 200
            self._finish(record)
            if self._stopping.wait(self.faults.hang_seconds):
                return  # server shutting down: drop the connection

        n = max(1, int(request.get("n") or 1))
        try:
            contents = [self.responder(request) for _ in range(n)]
        except Exception as exc:  # noqa: BLE001 - a responder bug: answer 500 and remember why
            with self._lock:
                self._errors.append(f"{type(exc).__name__}: {exc}")
            if fault != "hang":
                record.status = 500
                self._finish(record)
            handler._send_json(500, openai_error(f"responder failed: {exc}", "server_error"))
            return
        finish_reason = "stop"
        if fault == "truncate":
            contents = [c[: len(c) // 2] for c in contents]
            finish_reason = "length"
        elif fault == "garbage":
            contents = [GARBAGE_CONTENT for _ in contents]
        elif fault == "schema":
            contents = [SCHEMA_VIOLATION_CONTENT for _ in contents]
        if fault != "hang":
            record.status = 200
            self._finish(record)
        if request.get("stream"):
            self._send_stream(handler, request, contents, finish_reason)
        else:
            handler._send_json(200, self.completion_payload(request, contents, finish_reason))

    def _finish(self, record: CallRecord) -> None:
        """Store the call record and count its fault."""
        with self._lock:
            self._log.append(record)
            if record.fault is not None:
                self._faults_served[record.fault] = self._faults_served.get(record.fault, 0) + 1

    def completion_payload(self, request: dict[str, Any], contents: list[str], finish_reason: str) -> dict[str, Any]:
        """A ``chat.completion`` object in the real OpenAI shape."""
        prompt_tokens = _count_tokens(_message_text(request.get("messages")))
        completion_tokens = sum(_count_tokens(c) for c in contents)
        return {
            "id": f"chatcmpl-fake-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model") or self.model,
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": (
                        {"content": self.logprobs(request, content), "refusal": None}
                        if self.logprobs is not None and request.get("logprobs")
                        else None
                    ),
                    "finish_reason": finish_reason,
                }
                for i, content in enumerate(contents)
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def _send_stream(self, handler: _Handler, request: dict[str, Any], contents: list[str], finish_reason: str) -> None:
        """Answer ``stream=True`` with server-sent events: one content chunk per choice, then [DONE]."""
        base = {
            "id": f"chatcmpl-fake-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": request.get("model") or self.model,
        }
        events = []
        for i, content in enumerate(contents):
            delta = {"role": "assistant", "content": content}
            events.append({**base, "choices": [{"index": i, "delta": delta, "finish_reason": None}]})
            events.append({**base, "choices": [{"index": i, "delta": {}, "finish_reason": finish_reason}]})
        body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        handler._send_bytes(200, body.encode("utf-8"), "text/event-stream")


@dataclass
class CallRecord:
    """What happened on one chat call."""

    index: int
    key: str
    attempt: int
    fault: str | None = None
    status: int | None = None


__all__ = [
    "FAULT_KINDS",
    "CallRecord",
    "FakeOpenAIServer",
    "FaultSchedule",
    "Responder",
    "default_responder",
    "json_responder",
    "last_user_message",
    "openai_error",
    "request_key",
]
