"""A chat-completions server on 127.0.0.1 that answers deterministically and fails on request.

It speaks the subset of the OpenAI chat-completions API that llmcause uses
(``POST /v1/chat/completions`` with ``model`` and ``messages``; the reply has
``choices[0].message.content`` and ``usage``), so the call layer can be
tested and benchmarked end to end, through the real ``openai`` client and a
real socket, without any network.

Answers. By default the reply is ``"echo: <last user message>"``;
``responder(messages, body) -> str`` replaces it.

Faults. A user message containing ``FAULT=<kind>x<n>`` makes the first ``n``
attempts at that exact request fail with ``<kind>``:

- ``429``: status 429 with ``Retry-After: <retry_after>`` seconds;
- ``500``, ``503``: server errors;
- ``400``, ``401``: client errors whose message quotes the request's Authorization header (a careless
  server), to check that keys are kept out of what llmcause stores and prints;
- ``slow``: the reply comes after ``slow_seconds`` (beyond the client's timeout);
- ``malformed``: status 200 with a body that is not JSON;
- ``reset``: headers and half of the body, then the connection is reset.

``faults(body, attempt) -> kind | None`` replaces the marker rule. The
server counts every request (``requests``), every fault it served
(``faults_served``) and every successful answer per request (``answered``),
so tests can check that nothing was asked twice.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import struct
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

__all__ = ["LoopbackServer", "request_identity"]

_FAULT = re.compile(r"FAULT=(400|401|429|500|503|slow|malformed|reset)x(\d+)")


def request_identity(body: dict) -> str:
    """A hash of what was asked (model, messages, sampling parameters), the unit the server counts."""
    ident = {k: v for k, v in body.items() if k not in ("stream", "user")}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode("utf-8")).hexdigest()


def _marker_fault(body: dict, attempt: int) -> str | None:
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            m = _FAULT.search(content)
            if m and attempt <= int(m.group(2)):
                return m.group(1)
    return None


def _echo(messages: list, body: dict) -> str:
    users = [m.get("content", "") for m in messages if m.get("role") == "user"]
    return "echo: " + (users[-1] if users else "")


class LoopbackServer:
    """Start with ``with LoopbackServer() as server:``; ``server.base_url`` is the ``/v1`` URL."""

    def __init__(self, responder: Callable[[list, dict], str] | None = None,
                 faults: Callable[[dict, int], str | None] | None = None, retry_after: float = 1.0,
                 slow_seconds: float = 5.0, latency: float = 0.0, port: int = 0):
        self.responder = responder or _echo
        self.faults = faults or _marker_fault
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self.latency = latency
        self.requests = 0
        self.attempts: Counter = Counter()
        self.answered: Counter = Counter()
        self.faults_served: Counter = Counter()
        self.authorization: list[str] = []
        self.log: list[tuple[str, float, str | None]] = []  # (request identity, arrival time, fault)
        self._lock = threading.Lock()
        self._port = port
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "LoopbackServer":
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = _Server(("127.0.0.1", self._port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "LoopbackServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "the server is not running"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # ------------------------------------------------------------------ one request

    def _handle(self, handler: "_Handler") -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            handler.send_json(400, {"error": {"message": "request body is not JSON"}})
            return
        if handler.path.rstrip("/") != "/v1/chat/completions":
            handler.send_json(404, {"error": {"message": f"no route {handler.path}"}})
            return
        ident = request_identity(body)
        with self._lock:
            self.requests += 1
            self.attempts[ident] += 1
            attempt = self.attempts[ident]
            self.authorization.append(handler.headers.get("Authorization", ""))
        fault = self.faults(body, attempt)
        with self._lock:
            self.log.append((ident, time.monotonic(), fault))
            if fault is not None:
                self.faults_served[fault] += 1
        if self.latency:
            time.sleep(self.latency)
        if fault == "429":
            handler.send_json(429, {"error": {"message": "rate limited", "type": "rate_limit"}},
                              headers={"Retry-After": f"{self.retry_after:g}"})
            return
        if fault in ("400", "401"):
            auth = handler.headers.get("Authorization", "")
            handler.send_json(int(fault), {"error": {"message": f"request refused (you sent {auth})"}})
            return
        if fault in ("500", "503"):
            handler.send_json(int(fault), {"error": {"message": "server error"}})
            return
        if fault == "slow":
            time.sleep(self.slow_seconds)
        messages = body.get("messages") or []
        text = self.responder(messages, body)
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
        reply = {"id": "chatcmpl-" + ident[:12], "object": "chat.completion", "created": 0,
                 "model": body.get("model", ""),
                 "choices": [{"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": text}}],
                 "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(text.split()),
                           "total_tokens": prompt_tokens + len(text.split())}}
        if fault == "malformed":
            handler.send_raw(200, b'{"id": "chatcmpl-broken", "choices": [{"index": 0, "mess')
            return
        if fault == "reset":
            handler.send_reset(json.dumps(reply).encode("utf-8"))
            return
        if fault != "slow":  # a slow answer arrives after the client gave up: not delivered
            with self._lock:
                self.answered[ident] += 1
        handler.send_json(200, reply)


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # many clients connect at once at high concurrency


class _Handler(BaseHTTPRequestHandler):
    owner: LoopbackServer
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # Headers and body leave in separate writes: without this, Nagle's algorithm and delayed ACKs
        # add tens of milliseconds to every answer on a kept-alive connection.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):  # the server is quiet
        pass

    def do_POST(self):  # noqa: N802
        try:
            self.owner._handle(self)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def send_raw(self, status: int, payload: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()

    def send_json(self, status: int, obj: dict, headers: dict | None = None) -> None:
        self.send_raw(status, json.dumps(obj).encode("utf-8"), headers)

    def send_reset(self, payload: bytes) -> None:
        """Announce the whole body, send half of it, then reset the connection (RST, not FIN)."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload[: len(payload) // 2])
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()


def main(argv: list[str] | None = None) -> None:
    """``python -m llmcause.runs.loopback [--port P] [--latency S]``: serve until killed; prints the base URL."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="Seconds each answer waits.")
    args = parser.parse_args(argv)
    server = LoopbackServer(port=args.port, latency=args.latency).start()
    print(server.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
