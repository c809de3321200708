"""A stand-in for the public AI Horde, answering with its reply shapes (tests/fixtures/
public_horde/, cited from its source): it ignores `?wait=`, has no extensions in its heartbeat,
and can refuse with 429 and stay busy forever. For the CLI's rows of issue 23."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image

from tests.fixtures.public_horde import public_reply


def webp_b64() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (30, 90, 200)).save(buffer, format="WEBP")
    return base64.b64encode(buffer.getvalue()).decode()


@dataclass
class StubBehaviour:
    checks_until_done: int = 3  # None-like large number: never done
    impossible_checks: int = 0  # the first checks say is_possible: false
    refuse_first_async: bool = False  # 429 with Retry-After: 1
    calls: list[tuple[float, str, str, Any]] = field(
        default_factory=list
    )  # (t, method, path, body)


class PublicHordeStub:
    def __init__(self, behaviour: StubBehaviour) -> None:
        self.behaviour = behaviour
        self._lock = threading.Lock()
        self._checks = 0
        self._asyncs = 0
        image = webp_b64()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                path = self.path.split("?", 1)[0]
                with stub._lock:
                    stub.behaviour.calls.append((time.monotonic(), self.command, path, body))
                if path.endswith("/status/heartbeat"):
                    return self._reply(200, public_reply("heartbeat"))
                if path.endswith("/generate/async"):
                    with stub._lock:
                        stub._asyncs += 1
                        refuse = stub.behaviour.refuse_first_async and stub._asyncs == 1
                    if refuse:
                        message = {"message": "slow down", "rc": "RateLimited"}
                        return self._reply(429, message, {"Retry-After": "1"})
                    return self._reply(202, public_reply("async"))
                if "/generate/check/" in path:
                    with stub._lock:
                        stub._checks += 1
                        count = stub._checks
                    check = public_reply("check")
                    done = count > stub.behaviour.checks_until_done
                    check.update(done=done, finished=2 if done else 0, waiting=0 if done else 2)
                    check["is_possible"] = count > stub.behaviour.impossible_checks
                    return self._reply(200, check)
                if "/generate/status/" in path:
                    status = public_reply("status_inline", webp_base64=image)
                    return self._reply(200, status)
                return self._reply(404, {"message": "not here", "rc": "NotFound"})

            do_GET = do_POST = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def calls(self, method: str, path_part: str) -> list[tuple[float, str, str, Any]]:
        with self._lock:
            return [c for c in self.behaviour.calls if c[1] == method and path_part in c[2]]


@contextmanager
def public_horde_stub(behaviour: StubBehaviour) -> Iterator[PublicHordeStub]:
    stub = PublicHordeStub(behaviour)
    thread = threading.Thread(target=stub._server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        stub._server.shutdown()
        stub._server.server_close()
