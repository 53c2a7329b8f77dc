"""The served agent's limits and protections in one settings object (no FastAPI needed): body size, concurrency,
batch size, per-request deadline, the bearer API key, and the Host names it answers to; and where runs are recorded
when no store is named."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

API_KEY_ENV = "MICROPROMPTS_API_KEY"
MIN_KEY_LENGTH = 16
MAX_RUNS_PAGE = 100
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_BINDS = ("0.0.0.0", "::", "")


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach: `localhost`, 127.0.0.0/8, ::1."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_host_names(bind: str, extra: Sequence[str] = ()) -> frozenset[str]:
    """The Host header names a server bound to `bind` answers: the bound name, the loopback names for a loopback
    or wildcard bind, and `extra` (`*` accepts any)."""
    names = {h.strip().strip("[]").rstrip(".").lower() for h in extra if h.strip()}
    bind_name = bind.strip().strip("[]").lower()
    if is_loopback(bind_name) or bind_name in WILDCARD_BINDS:
        names.update(LOOPBACK_NAMES)
    if bind_name not in WILDCARD_BINDS:
        names.add(bind_name)
    return frozenset(names)


def check_api_key(key: str | None) -> str | None:
    """The key, stripped, or None when unset; ValueError (naming no part of it) when it is too short to guess."""
    if key is None or not key.strip():
        return None
    key = key.strip()
    if len(key) < MIN_KEY_LENGTH:
        raise ValueError(
            f"the API key is too short: use at least {MIN_KEY_LENGTH} characters "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    if any(ord(c) < 33 or ord(c) > 126 for c in key):
        raise ValueError("the API key must be printable ASCII without spaces (it travels in an HTTP header)")
    return key


def key_from_env() -> str | None:
    """The API key from $MICROPROMPTS_API_KEY, if set."""
    return os.environ.get(API_KEY_ENV) or None


@dataclass(frozen=True)
class ServeSettings:
    """The server's limits: body bytes (413), runs at once (503), batch size, deadline in seconds (504; None: no
    deadline), the bearer API key (401; None: open), the bound host and extra Host names it accepts (400)."""

    max_body_bytes: int = 1_000_000
    max_concurrency: int = 8
    max_batch: int = 64
    timeout: float | None = 120.0
    api_key: str | None = field(default=None, repr=False)
    host: str = "127.0.0.1"
    allowed_hosts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Check the values: limits at least 1, a positive deadline, a long enough key."""
        for name in ("max_body_bytes", "max_concurrency", "max_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.timeout is not None and not self.timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds (or None), got {self.timeout}")
        object.__setattr__(self, "api_key", check_api_key(self.api_key))
        object.__setattr__(self, "allowed_hosts", tuple(self.allowed_hosts))

    @property
    def host_names(self) -> frozenset[str]:
        """The Host header names accepted."""
        return allowed_host_names(self.host, self.allowed_hosts)

    def bind_error(self) -> str | None:
        """Why binding `host` is refused (a non-loopback address without an API key), or None."""
        if self.api_key is None and not is_loopback(self.host):
            return (
                f"binding {self.host} exposes the agent to other machines: set an API key with --api-key or "
                f"${API_KEY_ENV} (or bind 127.0.0.1)"
            )
        return None


STORE_NAME = "runs.sqlite"
REF_STORE_DIR = ".microprompts"


def default_store_path(target: str | Path) -> Path:
    """Where `serve` records runs unless told: beside the artifact (`<artifact dir>/runs.sqlite`), or for a flow
    reference (`path/file.py:name`, `module:name`), which has no artifact directory, `./.microprompts/runs.sqlite`."""
    text = str(target)
    if text.endswith(".json"):
        return Path(text).resolve().parent / STORE_NAME
    return Path.cwd().resolve() / REF_STORE_DIR / STORE_NAME
