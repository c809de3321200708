"""An HTTP relay between a worker and the real API that can corrupt or lose one reply.

The horde validates source images, so a corrupt job can only reach a worker through a damaged
transfer (or a hostile horde). This relay forwards every request to the real API unchanged and,
when armed, either rewrites the JSON of the next job-carrying `POST /generate/pop` reply with a
test's function (the real worker meets a corrupt payload coming from the real queue), or lets
the next request to a given endpoint through and then cuts the connection before the reply
(a lost reply, at exactly the request the test cares about — which the TCP proxy cannot aim).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

PopRewrite = Callable[[dict[str, Any]], dict[str, Any]]
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class TamperRelay:
    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self._lock = threading.Lock()
        self._rewrite: PopRewrite | None = None
        self._lose_reply_to: str | None = None
        self.tampered_ids: list[str] = []
        self.lost_replies: list[str] = []
        self._http = httpx.Client(timeout=60.0)
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                try:
                    upstream = relay._http.request(
                        self.command, relay.target + self.path, headers=headers, content=body
                    )
                except httpx.TransportError:
                    self.send_error(502)
                    return
                if relay._reply_is_lost(self.path):
                    # The request took effect upstream; the caller never hears of it.
                    self.close_connection = True
                    return
                content = upstream.content
                if self.command == "POST" and self.path.endswith("/generate/pop"):
                    content = relay._maybe_rewrite(upstream.status_code, content)
                self.send_response(upstream.status_code)
                for key, value in upstream.headers.items():
                    if key.lower() not in HOP_BY_HOP | {"content-encoding"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_DELETE = _relay

            def log_message(self, format: str, *args: Any) -> None:
                # Quiet: request lines would carry nothing useful here.
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    def corrupt_next_pop(self, rewrite: PopRewrite) -> None:
        with self._lock:
            self._rewrite = rewrite

    def lose_next_reply_to(self, path_suffix: str) -> None:
        """Forward the next request whose path ends with `path_suffix`, then cut the connection
        without answering: the sender cannot tell whether its request took effect."""
        with self._lock:
            self._lose_reply_to = path_suffix

    def _reply_is_lost(self, path: str) -> bool:
        with self._lock:
            if self._lose_reply_to is None or not path.endswith(self._lose_reply_to):
                return False
            self._lose_reply_to = None
            self.lost_replies.append(path)
            return True

    def _maybe_rewrite(self, status: int, content: bytes) -> bytes:
        if status != 200:
            return content
        with self._lock:
            rewrite = self._rewrite
            if rewrite is None:
                return content
            reply = json.loads(content)
            if not reply.get("id"):
                return content
            self._rewrite = None
            self.tampered_ids.append(reply["id"])
        return json.dumps(rewrite(reply)).encode()

    def start(self) -> TamperRelay:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()


@contextlib.contextmanager
def tamper_relay(target: str) -> Iterator[TamperRelay]:
    relay = TamperRelay(target).start()
    try:
        yield relay
    finally:
        relay.stop()
