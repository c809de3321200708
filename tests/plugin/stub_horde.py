"""A scriptable HTTP server speaking enough of the AI Horde v2 client API to drive the plug-in's
client through every path, including the ones a real horde never takes on purpose: garbage
bodies, HTML error pages, corrupt images, dropped connections, slow replies.

Tests that need a correct horde use the real one (tests/helpers/live_horde.py) instead; this
stub exists for the misbehaviour and for the client's state machine in isolation.
"""

from __future__ import annotations

import json
import ssl
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Canned:
    """One scripted reply: status, body, and how to deliver it."""

    status: int = 200
    body: Any = None  # dict/list → JSON; bytes/str → sent as is
    content_type: str = "application/json"
    delay_s: float = 0.0
    drop: bool = False  # close the connection without answering


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class StubState:
    images: list[str] = field(default_factory=list)  # base64 images for `generations`
    checks_until_done: int = 1
    progress_extension: bool = False
    is_possible: bool = True
    checks: int = 0
    cancelled: bool = False
    request_id: str = "stub-request-1"
    price: float = 7.5  # the reply to a dry run
    balance: float = 1234.0  # the user's kudos (find_user)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        # A client that gave up (timeout, cancel) leaves a broken pipe behind: expected here.
        if isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError)):
            return
        super().handle_error(request, client_address)


class StubHorde:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.state = StubState()
        self.requests: list[Recorded] = []
        # Scripted replies per (method, path prefix), used before the default behaviour.
        self.scripts: dict[tuple[str, str], deque[Canned]] = {}
        self.default_delay_s = 0.0
        self.dry_run_scripts = False  # price queries take scripted replies too
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler_class())
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{self.scheme}://{host}:{port}"

    def start(self) -> StubHorde:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def script(self, method: str, path_prefix: str, *replies: Canned) -> None:
        self.scripts.setdefault((method, path_prefix), deque()).extend(replies)

    def calls(self, method: str, path_prefix: str = "", dry_runs: bool = False) -> list[Recorded]:
        """The requests made so far; price queries (`dry_run: true`) only when asked for."""
        with self._lock:
            return [
                r
                for r in self.requests
                if r.method == method
                and r.path.startswith(path_prefix)
                and (dry_runs or not (isinstance(r.body, dict) and r.body.get("dry_run")))
            ]

    def _take_script(self, method: str, path: str) -> Canned | None:
        with self._lock:
            for (verb, prefix), queue in self.scripts.items():
                if verb == method and path.startswith(prefix) and queue:
                    return queue.popleft()
        return None

    def _default(self, method: str, path: str, query: str, body: Any = None) -> Canned:
        state = self.state
        if method == "POST" and path == "/api/v2/generate/async":
            if isinstance(body, dict) and body.get("dry_run"):
                return Canned(200, {"kudos": state.price})
            return Canned(202, {"id": state.request_id, "kudos": 10, "warnings": []})
        if method == "GET" and path == "/api/v2/find_user":
            return Canned(200, {"username": "artist#1", "id": 1, "kudos": state.balance})
        if method == "GET" and path.startswith("/api/v2/generate/check/"):
            with self._lock:
                state.checks += 1
                checks = state.checks
            done = checks >= state.checks_until_done
            body = self._check_body(done)
            if state.progress_extension:
                body["progress"] = 1.0 if done else min(0.9, checks / state.checks_until_done)
            return Canned(200, body)
        if method == "GET" and path.startswith("/api/v2/generate/status/"):
            body = self._check_body(True)
            body["generations"] = [
                {
                    "img": img,
                    "seed": str(1000 + index),
                    "id": f"gen-{index}",
                    "worker_id": "w1",
                    "worker_name": "stub-worker",
                    "model": "stub-model",
                    "state": "ok",
                    "censored": False,
                }
                for index, img in enumerate(state.images)
            ]
            return Canned(200, body)
        if method == "DELETE" and path.startswith("/api/v2/generate/status/"):
            state.cancelled = True
            body = self._check_body(False)
            body["generations"] = []
            return Canned(200, body)
        if method == "GET" and path == "/api/v2/status/models":
            return Canned(
                200,
                [
                    {"name": "few", "count": 1, "type": "image"},
                    {"name": "many", "count": 5, "type": "image"},
                    {"name": "text-model", "count": 9, "type": "text"},
                ],
            )
        return Canned(404, {"message": f"no route {method} {path}", "rc": "NotFound"})

    def _check_body(self, done: bool) -> dict[str, Any]:
        n = max(1, len(self.state.images))
        return {
            "finished": n if done else 0,
            "processing": 0,
            "restarted": 0,
            "waiting": 0 if done else n,
            "done": done,
            "faulted": False,
            "wait_time": 0 if done else 5,
            "queue_position": 0 if done else 2,
            "kudos": 10,
            "is_possible": self.state.is_possible,
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                path, _, query = self.path.partition("?")
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                with stub._lock:
                    stub.requests.append(
                        Recorded(self.command, self.path, dict(self.headers.items()), body)
                    )
                # Price queries are answered by the default, never take a scripted reply.
                dry_run = (
                    isinstance(body, dict) and body.get("dry_run") and not stub.dry_run_scripts
                )
                canned = (None if dry_run else stub._take_script(self.command, path)) or (
                    stub._default(self.command, path, query, body)
                )
                delay = canned.delay_s or stub.default_delay_s
                if delay:
                    time.sleep(delay)
                if canned.drop:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if isinstance(canned.body, (dict, list)):
                    data = json.dumps(canned.body).encode()
                elif isinstance(canned.body, str):
                    data = canned.body.encode()
                else:
                    data = canned.body or b""
                self.send_response(canned.status)
                self.send_header("Content-Type", canned.content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PUT = _serve

        return Handler


def started_stub(setup: Callable[[StubHorde], None] | None = None) -> StubHorde:
    stub = StubHorde()
    if setup:
        setup(stub)
    return stub.start()
