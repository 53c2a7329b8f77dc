"""A counting proxy in front of one OpenAI-compatible server (stdlib only).

Every system under test talks to ``http://HOST:PORT/sys/<tag>/<role>/v1/...``; the proxy strips the
``/sys/<tag>/<role>`` prefix, forwards the request unchanged to the upstream server and counts, per
``(tag, role)``, the requests, the upstream's reported prompt and completion tokens, errors and seconds.
So every system's calls are counted at the server in exactly the same way, whatever its own accounting says.

Control endpoints (plain JSON):
  GET  /_stats               all counters
  GET  /_stats/<tag>         one tag's counters
  POST /_reset/<tag>         forget one tag's counters (a cell that is re-run starts from zero)
  GET  /_health              200 when the upstream answers /v1/models

With ``--max-tokens-cap N`` it clamps each request's ``max_tokens`` to N (the only change it makes to a request;
every clamped request is counted as ``capped``).

Run: ``python proxy.py --upstream http://127.0.0.1:8801 --port 8800 [--stats-file F] [--max-tokens-cap N]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COUNTED = ("/v1/chat/completions", "/v1/completions")
HOP_HEADERS = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "accept-encoding",
}


class Counters:
    def __init__(self, stats_file: str | None) -> None:
        self.lock = threading.Lock()
        self.data: dict[str, dict[str, dict[str, float]]] = {}
        self.stats_file = stats_file
        self._last_dump = 0.0

    def add(self, tag: str, role: str, **values: float) -> None:
        with self.lock:
            slot = self.data.setdefault(tag, {}).setdefault(
                role,
                {
                    "requests": 0,
                    "ok": 0,
                    "errors": 0,
                    "prompt_tokens": 0,
                    "completion_tokens": 0,
                    "seconds": 0.0,
                    "first": time.time(),
                    "last": 0.0,
                },
            )
            for key, value in values.items():
                slot[key] = slot.get(key, 0) + value
            slot["last"] = time.time()
            if self.stats_file and time.time() - self._last_dump > 2:
                self._dump()

    def _dump(self) -> None:
        tmp = f"{self.stats_file}.tmp"
        with open(tmp, "w") as fh:
            json.dump(self.data, fh)
        os.replace(tmp, self.stats_file)
        self._last_dump = time.time()

    def snapshot(self, tag: str | None = None) -> dict:
        with self.lock:
            return json.loads(json.dumps(self.data.get(tag, {}) if tag else self.data))

    def reset(self, tag: str) -> None:
        with self.lock:
            self.data.pop(tag, None)


def usage_of(body: bytes) -> tuple[int, int]:
    """(prompt, completion) tokens from a JSON body or an SSE stream's chunks that carry `usage`."""
    text = body.decode("utf-8", "replace")
    candidates = [text]
    if text.lstrip().startswith("data:"):
        candidates = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
    prompt = completion = 0
    for chunk in candidates:
        try:
            usage = (json.loads(chunk) or {}).get("usage") or {}
        except (ValueError, AttributeError):
            continue
        prompt = max(prompt, int(usage.get("prompt_tokens") or 0))
        completion = max(completion, int(usage.get("completion_tokens") or 0))
    return prompt, completion


def cap_max_tokens(body: bytes, cap: int) -> tuple[bytes, bool]:
    """The one change the proxy may make: every request leaves with `max_tokens` set to the smallest limit it gave
    (`max_tokens` or `max_completion_tokens`) and at most `cap`, a server-side generation limit, the same for
    every system (a 0.5B model on 2 busy cores makes ~6 tokens/s; its runaway repetitions would otherwise hold the
    one server for minutes). llama_cpp.server reads only `max_tokens`: a request with `max_completion_tokens` alone
    (langchain-openai's) would otherwise run to the end of the context. Returns whether the body changed."""
    try:
        data = json.loads(body)
    except ValueError:
        return body, False
    if not isinstance(data, dict):
        return body, False
    keys = [k for k in ("max_tokens", "max_completion_tokens") if data.get(k) is not None]
    limit = min([int(data[k]) for k in keys] + [cap])
    if data.get("max_tokens") is not None and all(int(data[k]) == limit for k in keys):
        return body, False
    for k in {*keys, "max_tokens"}:
        data[k] = limit
    return json.dumps(data).encode(), True


def make_handler(upstream: str, counters: Counters, timeout: float, max_tokens_cap: int | None = None):
    parsed = urllib.parse.urlparse(upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _json(self, code: int, payload: object) -> None:
            body = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _split(self) -> tuple[str, str, str]:
            parts = self.path.split("/", 4)  # '', 'sys', tag, role, rest
            if len(parts) == 5 and parts[1] == "sys":
                return parts[2], parts[3], "/" + parts[4]
            return "_untagged", "task", self.path

        def _forward(self, method: str) -> None:
            if self.path.startswith("/_"):
                return self._control(method)
            tag, role, path = self._split()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            started = time.perf_counter()
            counted = path.split("?")[0].rstrip("/") in COUNTED
            capped = False
            if counted and body and max_tokens_cap:
                body, capped = cap_max_tokens(body, max_tokens_cap)
            try:
                conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                status, resp_headers = resp.status, resp.getheaders()
                conn.close()
            except Exception as exc:  # noqa: BLE001 - the client sees a 502 and the counter an error
                if counted:
                    counters.add(tag, role, requests=1, errors=1, seconds=time.perf_counter() - started)
                return self._json(502, {"error": {"message": f"proxy: upstream failed: {exc}"}})
            if counted:
                prompt, completion = usage_of(data) if status == 200 else (0, 0)
                counters.add(
                    tag,
                    role,
                    requests=1,
                    ok=int(status == 200),
                    errors=int(status != 200),
                    prompt_tokens=prompt,
                    completion_tokens=completion,
                    capped=int(capped),
                    seconds=time.perf_counter() - started,
                )
            self.send_response(status)
            for key, value in resp_headers:
                if key.lower() not in HOP_HEADERS:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _control(self, method: str) -> None:
            parts = [p for p in self.path.split("/") if p]
            if parts[0] == "_stats":
                return self._json(200, counters.snapshot(parts[1] if len(parts) > 1 else None))
            if parts[0] == "_reset" and method == "POST" and len(parts) > 1:
                counters.reset(parts[1])
                return self._json(200, {"reset": parts[1]})
            if parts[0] == "_health":
                try:
                    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=25)
                    conn.request("GET", "/v1/models")
                    ok = conn.getresponse().status == 200
                    conn.close()
                except Exception:  # noqa: BLE001
                    ok = False
                return self._json(200 if ok else 503, {"upstream": ok})
            return self._json(404, {"error": "unknown control path"})

        def do_GET(self) -> None:  # noqa: N802
            self._forward("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._forward("POST")

    return Handler


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--stats-file")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--max-tokens-cap", type=int, default=None, help="clamp every request's max_tokens to this")
    args = ap.parse_args()
    counters = Counters(args.stats_file)
    server = ThreadingHTTPServer(
        (args.host, args.port), make_handler(args.upstream, counters, args.timeout, args.max_tokens_cap)
    )
    server.daemon_threads = True
    print(f"proxy on http://{args.host}:{args.port} -> {args.upstream}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
