"""HTTP plumbing of the served agent: JSON error bodies, strict JSON bodies, the body-size limit and the
concurrency slots. Every error leaves as `{"error": {"type", "message", ...}}`, never as a traceback."""

from __future__ import annotations

import json
import logging
import math
import threading
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from microprompts.serve.store import scrub

log = logging.getLogger("microprompts.serve")

_STATUS_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    502: "model_error",
    503: "overloaded",
    504: "timeout",
}


class ApiError(Exception):
    """An error the API answers with: an HTTP status, a machine-readable type and a one-line message."""

    def __init__(
        self, status: int, type_: str, message: str, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status, self.type, self.message, self.headers, self.extra = status, type_, message, headers, extra


class ErrorDetail(BaseModel):
    """What went wrong: a type (`validation_error`, `not_found`, `overloaded`, ...) and a message."""

    type: str
    message: str


class ErrorBody(BaseModel):
    """Every error response's body."""

    error: ErrorDetail


def _finite(value: Any) -> Any:
    """`value` with non-finite floats replaced by None (JSON has no NaN or Infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def dump_json(content: Any) -> bytes:
    """Strict JSON bytes for any content: no NaN, no invalid UTF-8 (falls back to ASCII escapes)."""
    try:
        return json.dumps(content, ensure_ascii=False, allow_nan=False, default=str, separators=(",", ":")).encode(
            "utf-8"
        )
    except ValueError:  # NaN/Infinity, or a lone surrogate that UTF-8 cannot encode
        return json.dumps(
            _finite(content), ensure_ascii=True, allow_nan=False, default=str, separators=(",", ":")
        ).encode("ascii")


class SafeJSONResponse(JSONResponse):
    """A JSONResponse that cannot fail to render."""

    def render(self, content: Any) -> bytes:
        """Strict JSON bytes."""
        return dump_json(content)


def error_response(
    status: int, type_: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> SafeJSONResponse:
    """The JSON error body every failure answers with (message scrubbed of secrets, one line, bounded)."""
    line = scrub(str(message)).replace("\r", " ").replace("\n", " ")[:2000]
    return SafeJSONResponse({"error": {"type": type_, "message": line, **extra}}, status_code=status, headers=headers)


def validation_details(exc: ValidationError | RequestValidationError, prefix: tuple[str, ...] = ()) -> list[dict]:
    """Pydantic errors as `[{"loc", "msg", "type"}]`, without echoing the input."""
    if isinstance(exc, ValidationError):
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
    else:
        errors = exc.errors()
    return [
        {
            "loc": [*prefix, *(str(p) for p in e.get("loc", ()))],
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in errors[:20]
    ]


def validation_message(details: list[dict]) -> str:
    """One line summing up validation errors."""
    parts = [f"{'.'.join(d['loc']) or '(body)'}: {d['msg']}" for d in details[:5]]
    more = f" (+{len(details) - 5} more)" if len(details) > 5 else ""
    return "invalid request body: " + "; ".join(parts) + more


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def check_json_type(content_type: str | None) -> None:
    """ApiError 415 unless the Content-Type is `application/json` (parameters such as charset allowed): a browser
    sends other types cross-site without asking first."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        shown = media[:100] or "none"
        raise ApiError(
            415, "unsupported_media_type", f"request body must be sent as Content-Type: application/json (got {shown})"
        )


async def read_json(request: Request) -> Any:
    """The request body as strict JSON (UTF-8, no NaN/Infinity, no lone surrogates); ApiError 422 when it is empty
    or not such JSON, 415 when it is not sent as `application/json`."""
    body = await request.body()
    if not body.strip():
        raise ApiError(422, "validation_error", "request body is empty: expected a JSON object")
    check_json_type(request.headers.get("content-type"))
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_no_constants)
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # lone surrogates cannot be stored or sent on
    except UnicodeError as exc:
        reason = getattr(exc, "reason", str(exc))  # UnicodeDecodeError has one; a bare UnicodeError may not
        raise ApiError(422, "invalid_json", f"request body is not valid UTF-8 JSON: {reason}") from exc
    except json.JSONDecodeError as exc:
        raise ApiError(422, "invalid_json", f"request body is not valid JSON: {exc.msg} at position {exc.pos}") from exc
    except (ValueError, RecursionError) as exc:
        raise ApiError(422, "invalid_json", f"request body is not valid JSON: {exc}") from exc
    return value


def parse_body(model: type[BaseModel], value: Any) -> Any:
    """Validate a parsed body against a request model; ApiError 422 with details otherwise."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        details = validation_details(exc)
        raise ApiError(422, "validation_error", validation_message(details), details=details) from exc
    except RecursionError as exc:
        raise ApiError(422, "validation_error", "request body is nested too deeply") from exc


def install_error_handlers(app: FastAPI) -> None:
    """Every error the app can raise, as a JSON body: ours, FastAPI's validation, Starlette's HTTP, and 500s."""

    async def api_error(request: Request, exc: Exception) -> SafeJSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.type, exc.message, exc.headers, **exc.extra)

    async def request_validation(request: Request, exc: Exception) -> SafeJSONResponse:
        assert isinstance(exc, RequestValidationError)
        details = validation_details(exc)
        return error_response(422, "validation_error", validation_message(details), details=details)

    async def http_error(request: Request, exc: Exception) -> SafeJSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        message = str(exc.detail)
        if status == 404:
            message = f"no route {request.method} {request.url.path}"
        elif status == 405:
            message = f"method {request.method} not allowed on {request.url.path}"
        return error_response(status, _STATUS_TYPES.get(status, "http_error"), message, dict(exc.headers or {}))

    async def unexpected(request: Request, exc: Exception) -> SafeJSONResponse:
        log.error(
            "unhandled %s on %s %s: %s", type(exc).__name__, request.method, request.url.path, scrub(str(exc))[:500]
        )
        return error_response(500, "internal_error", "internal server error")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, request_validation)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


class BodyLimitMiddleware:
    """Answer 413 (JSON) when a request body is larger than `max_bytes`: on the declared Content-Length and on
    the bytes actually received (chunked bodies, lying headers). A too-large body is drained up to `drain_bytes`
    first, so the client reads the 413 instead of a reset connection."""

    def __init__(self, app: ASGIApp, max_bytes: int, drain_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.drain_bytes = drain_bytes if drain_bytes is not None else max(16 * max_bytes, 16_000_000)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Buffer the body (at most `max_bytes`), then replay it to the app."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await self._reply(scope, receive, send, 400, "bad_request", "Content-Length is not a number", False)
                return
            if length > self.max_bytes:
                await self._too_large(scope, receive, send, f"declared {length} bytes", True, 0)
                return
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_bytes:
                more = bool(message.get("more_body", False))
                await self._too_large(scope, receive, send, f"received over {self.max_bytes} bytes", more, total)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, what: str, more: bool, seen: int) -> None:
        message = f"request body too large ({what}); the limit is {self.max_bytes} bytes"
        await self._reply(scope, receive, send, 413, "payload_too_large", message, more, seen)

    async def _reply(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        status: int,
        type_: str,
        message: str,
        more: bool,
        seen: int = 0,
    ) -> None:
        while more and seen <= self.drain_bytes:  # drain what the client is still sending, within reason
            got = await receive()
            if got["type"] != "http.request":
                break
            seen += len(got.get("body", b""))
            more = got.get("more_body", False)
        headers = None if not more else {"connection": "close"}
        await error_response(status, type_, message, headers)(scope, receive, send)


class Slots:
    """A concurrency limit tried without waiting: `try_acquire()` is False when all slots are taken."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {size}")
        self.size = size
        self.active = 0
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        """Take a slot if one is free."""
        with self._lock:
            if self.active >= self.size:
                return False
            self.active += 1
            return True

    def release(self) -> None:
        """Give a slot back."""
        with self._lock:
            self.active = max(0, self.active - 1)

    def take(self) -> None:
        """Take a slot or raise the 503 ApiError."""
        if not self.try_acquire():
            raise ApiError(
                503,
                "overloaded",
                f"server is at its concurrency limit ({self.size} runs); retry later",
                headers={"Retry-After": "1"},
            )
