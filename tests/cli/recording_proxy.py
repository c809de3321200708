"""A small HTTP proxy in front of a horde that records what the CLI sent and got.

It lets a test assert on the horde side: the bodies that reached `/generate/async`, the images
`/generate/status` handed back, the cancels. Bounded: it serves loopback only, while its `with`
block lasts.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

_HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding", "accept-encoding"}


@dataclass
class Exchange:
    method: str
    path: str  # without the query
    body: Any
    status: int
    reply: Any


class RecordingProxy:
    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=120)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:  # quiet
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
                reply = proxy._client.request(
                    self.command, proxy.target + self.path, content=data, headers=headers
                )
                proxy._record(self.command, self.path, data, reply)
                self.send_response(reply.status_code)
                for key, value in reply.headers.items():
                    if key.lower() not in _HOP_HEADERS | {"content-encoding"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply.content)))
                self.end_headers()
                self.wfile.write(reply.content)

            do_GET = do_POST = do_DELETE = do_PUT = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def _record(self, method: str, path: str, data: bytes, reply: httpx.Response) -> None:
        def parsed(raw: bytes) -> Any:
            try:
                return json.loads(raw) if raw else None
            except ValueError:
                return None

        exchange = Exchange(
            method, path.split("?", 1)[0], parsed(data), reply.status_code, parsed(reply.content)
        )
        with self._lock:
            self.exchanges.append(exchange)

    def sent(self, method: str, path_part: str) -> list[Exchange]:
        with self._lock:
            return [e for e in self.exchanges if e.method == method and path_part in e.path]

    def submitted(self) -> list[Exchange]:
        """Every accepted POST /generate/async, in order."""
        return [e for e in self.sent("POST", "/generate/async") if e.status == 202]

    def status_of(self, request_id: str) -> Any:
        """The last full status of a request the CLI fetched (GET or DELETE)."""
        for exchange in reversed(self.exchanges):
            if exchange.path.endswith(f"/generate/status/{request_id}") and exchange.reply:
                return exchange.reply
        raise KeyError(request_id)


@contextmanager
def recording_proxy(target: str) -> Iterator[RecordingProxy]:
    proxy = RecordingProxy(target)
    thread = threading.Thread(target=proxy._server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy._server.shutdown()
        proxy._server.server_close()
        proxy._client.close()
