"""A small horde stand-in on loopback for the worker's loop tests.

It speaks the worker side of the protocol (pop, submit, progress, presigned-style uploads) over
real HTTP, keeps what it received, and can inject faults: 503 answers and connections dropped
without a reply. Tests queue jobs with `add_job` and wait on conditions (`wait_for`), never
on sleeps.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from horde_protocol import PopRequest, ProgressRequest, SubmitRequest


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that vanish (a killed worker, a reset from a fault) are expected here.
        pass


class StubHorde:
    def __init__(self, *, progress: bool = True, r2: bool = False) -> None:
        self.progress_enabled = progress
        self.r2 = r2
        self.jobs: deque[dict[str, Any]] = deque()
        self.pops: list[PopRequest] = []
        self.handed_out: list[str] = []  # job ids in the order pops took them
        self.submits: list[SubmitRequest] = []
        self.progress: list[ProgressRequest] = []
        self.uploads: dict[str, bytes] = {}
        self.cancelled: set[str] = set()
        self.skipped: dict[str, int] = {}
        self.requests: Counter[str] = Counter()
        self._faults: dict[str, deque[str]] = {}
        self._accepted: set[str] = set()
        self._changed = threading.Condition()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.api = f"{self.url}/api/v2"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # ---- test side ----

    def start(self) -> StubHorde:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add_job(
        self,
        *,
        prompt: str = "a cat###blurry",
        width: int = 64,
        height: int = 64,
        steps: int = 4,
        seed: str = "7",
        sampler_name: str = "k_euler",
        model: str = "krita-horde-tiny",
        n: int = 1,
        **extra: Any,
    ) -> str:
        """Queue a job; returns its id (with n > 1, the first of its ids)."""
        payload_extra = extra.pop("payload", {})
        ids = [str(uuid.uuid4()) for _ in range(n)]
        reply: dict[str, Any] = {
            "id": ids[0],
            "ids": ids,
            "model": model,
            "ttl": 300,
            "payload": {
                "prompt": prompt,
                "ddim_steps": steps,
                "seed": seed,
                "n_iter": n,
                "sampler_name": sampler_name,
                "cfg_scale": 7.0,
                "width": width,
                "height": height,
                **payload_extra,
            },
            "skipped": {},
            **extra,
        }
        if self.r2:
            reply["r2_upload"] = f"{self.url}/r2/{ids[0]}?signature=secret"
        with self._changed:
            self.jobs.append(reply)
            self._changed.notify_all()
        return ids[0]

    def fail_next(self, path: str, *kinds: str) -> None:
        """The next requests to `path` (e.g. "/generate/submit") fail in order: "503" answers
        503, "drop" resets the connection after reading the request (it may have taken
        effect), "drop_before" resets it before acting."""
        with self._changed:
            self._faults.setdefault(path, deque()).extend(kinds)

    def wait_for(self, condition: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"stub horde: condition not met in {timeout}s")
                self._changed.wait(remaining)

    def submits_for(self, job_id: str) -> list[SubmitRequest]:
        return [submit for submit in self.submits if submit.id == job_id]

    # ---- server side ----

    def _next_fault(self, path: str) -> str | None:
        with self._changed:
            queue = self._faults.get(path)
            return queue.popleft() if queue else None

    def _handle(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        if method == "PUT" and path.startswith("/r2/"):
            with self._changed:
                self.uploads[path.removeprefix("/r2/").split("?")[0]] = body
                self._changed.notify_all()
            return 200, None
        data = json.loads(body or b"{}")
        if path == "/api/v2/generate/pop":
            request = PopRequest.model_validate(data)
            with self._changed:
                self.pops.append(request)
                reply = self.jobs.popleft() if self.jobs else None
                if reply is not None:
                    self.handed_out.append(reply["id"])
                self._changed.notify_all()
            if reply is None:
                return 200, {"id": None, "ids": [], "skipped": dict(self.skipped)}
            return 200, reply
        if path == "/api/v2/generate/submit":
            submit = SubmitRequest.model_validate(data)
            with self._changed:
                duplicate = submit.id in self._accepted
                self._accepted.add(submit.id)
                self.submits.append(submit)
                self._changed.notify_all()
            if duplicate:
                return 400, {"message": "already submitted", "rc": "DuplicateGen"}
            return 200, {"reward": 10.0}
        if path == "/api/v2/generate/progress" and self.progress_enabled:
            progress = ProgressRequest.model_validate(data)
            with self._changed:
                self.progress.append(progress)
                self._changed.notify_all()
            return 200, {"cancelled": progress.id in self.cancelled}
        return 404, {"message": f"no route {path}", "rc": "NotFound"}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?")[0]
                short = path.removeprefix("/api/v2")
                with stub._changed:
                    stub.requests[short] += 1
                    stub._changed.notify_all()
                fault = stub._next_fault(short)
                if fault == "drop_before":
                    self._reset()
                    return
                if fault == "503":
                    self._reply(503, {"message": "busy", "rc": "InternalServerError"})
                    return
                status, reply = stub._handle(method, path, body)
                if fault == "drop":
                    self._reset()
                    return
                self._reply(status, reply)

            def _reply(self, status: int, reply: Any) -> None:
                data = b"" if reply is None else json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _reset(self) -> None:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.connection.close()

            def do_POST(self) -> None:
                self._serve("POST")

            def do_PUT(self) -> None:
                self._serve("PUT")

            def do_GET(self) -> None:
                if self.path.startswith("/api/v2/status/heartbeat"):
                    self._reply(200, {"message": "OK", "version": "stub"})
                else:
                    self._reply(404, {"message": "no route", "rc": "NotFound"})

        return Handler


@contextlib.contextmanager
def running_stub(**options: Any) -> Iterator[StubHorde]:
    stub = StubHorde(**options).start()
    try:
        yield stub
    finally:
        stub.close()
