"""The served agent's front door, before any route: the Host header must name this server (400 otherwise: a
DNS-rebound page cannot post to a local agent) and, when the server has an API key, every route but the probes
`/health` and `/ready` needs `Authorization: Bearer KEY` (401 otherwise), compared in constant time. The key is
never echoed."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from microprompts.serve._http import error_response

OPEN_PATHS = frozenset({"/health", "/ready"})


def host_name(header: str) -> str:
    """The name part of a Host header (`[::1]:8000` -> `::1`, `Example.com.:80` -> `example.com`)."""
    value = header.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else value
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header, else None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


class GuardMiddleware:
    """Answer 400 (JSON) for a Host not in `hosts` (unless `*` is), and 401 (JSON) for a request without the
    API key on any path but the open ones; drains at most `drain_bytes` of a refused body first."""

    def __init__(
        self, app: ASGIApp, hosts: Iterable[str], api_key: str | None = None, drain_bytes: int = 1_000_000
    ) -> None:
        self.app = app
        self.hosts = frozenset(hosts)
        self.any_host = "*" in self.hosts
        self._key = api_key.encode() if api_key else None
        self.drain_bytes = drain_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the Host and the key, then hand the request on."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers") or []}
        host = host_name(headers.get(b"host", b"").decode("latin-1"))
        if not self.any_host and host not in self.hosts:
            shown = host[:100] or "none"
            await self._refuse(
                scope,
                receive,
                send,
                400,
                "bad_request",
                f"Host {shown!r} is not served here (start the server with --allowed-host to add it)",
            )
            return
        if self._key is not None and scope.get("path") not in OPEN_PATHS and not self._authorized(headers):
            await self._refuse(
                scope,
                receive,
                send,
                401,
                "unauthorized",
                "missing or wrong API key: send the header Authorization: Bearer <key>",
                {"www-authenticate": "Bearer"},
            )
            return
        await self.app(scope, receive, send)

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        token = bearer_token(headers.get(b"authorization", b"").decode("latin-1"))
        if token is None or self._key is None:
            return False
        return hmac.compare_digest(token.encode("latin-1", "replace"), self._key)

    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        status: int,
        type_: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        more, seen = True, 0
        while more and seen <= self.drain_bytes:  # read what the client sends, so it reads the answer
            got = await receive()
            if got["type"] != "http.request":
                break
            seen += len(got.get("body", b""))
            more = bool(got.get("more_body", False))
        extra = dict(headers or {})
        if more:
            extra["connection"] = "close"
        await error_response(status, type_, message, extra or None)(scope, receive, send)
