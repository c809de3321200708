"""A small synchronous AI Horde v2 client and a simulated HTTP worker, for the fault tests.

Everything goes over real HTTP to the API under test; the simulated worker speaks the worker half
of the protocol (pop, then submit a small valid WebP) without any model, so that tests about the
queue do not pay for diffusion.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from horde_protocol import ANONYMOUS_API_KEY
from tests.faults.images import image_bytes, webp_b64

TINY_MODEL = "krita-horde-tiny"
CLIENT_AGENT = "krita-horde-fault-tests:1:none"

# A request every simulated worker can serve quickly: the smallest size, one step.
SMALL_PARAMS: dict[str, Any] = {"width": 64, "height": 64, "steps": 1, "n": 1}


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    """Poll `predicate` until it returns something truthy; return it, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value: {value!r})")
        time.sleep(interval)


class HordeClient:
    """Thin wrapper over the `/api/v2` endpoints; every method returns the raw httpx response."""

    def __init__(
        self,
        api: str,
        apikey: str = ANONYMOUS_API_KEY,
        timeout: float = 10.0,
        verify: str | bool = True,
    ) -> None:
        self.api = api.rstrip("/")
        self.apikey = apikey
        self.http = httpx.Client(timeout=timeout, verify=verify)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> HordeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _headers(self, apikey: str | None) -> dict[str, str]:
        return {"apikey": apikey or self.apikey, "Client-Agent": CLIENT_AGENT}

    def call(
        self,
        method: str,
        path: str,
        *,
        apikey: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        merged = {**self._headers(apikey), **(headers or {})}
        return self.http.request(method, self.api + path, headers=merged, **kwargs)

    # client side
    def generate(self, body: dict[str, Any], *, apikey: str | None = None) -> httpx.Response:
        return self.call("POST", "/generate/async", apikey=apikey, json=body)

    def request_id(self, prompt: str = "a cat", *, apikey: str | None = None, **extra: Any) -> str:
        """Queue a small request and return its id (asserting it was accepted)."""
        body: dict[str, Any] = {"prompt": prompt, "params": dict(SMALL_PARAMS), "r2": False}
        params = extra.pop("params", {})
        body["params"].update(params)
        body.update(extra)
        reply = self.generate(body, apikey=apikey)
        assert reply.status_code == 202, reply.text
        return reply.json()["id"]

    def check(self, request_id: str) -> httpx.Response:
        return self.call("GET", f"/generate/check/{request_id}")

    def status(self, request_id: str) -> httpx.Response:
        return self.call("GET", f"/generate/status/{request_id}")

    def cancel(self, request_id: str) -> httpx.Response:
        return self.call("DELETE", f"/generate/status/{request_id}")

    def wait_done(
        self, request_id: str, timeout: float, explain: Callable[[], str] | None = None
    ) -> dict[str, Any]:
        """Poll check until the request is done (or faulted); return the full status. At the
        deadline, the failure says what `explain` finds (which image is stuck, and how)."""

        def final() -> bool:
            try:
                reply = self.check(request_id)
            except httpx.TransportError:
                return False  # the API may be restarting: keep polling until the deadline
            if reply.status_code != 200:
                return False
            body = reply.json()
            return bool(body.get("done") or body.get("faulted"))

        try:
            wait_until(final, timeout, interval=0.1)
        except AssertionError as missed:
            detail = explain() if explain is not None else ""
            raise AssertionError(f"request {request_id} not done in {timeout} s\n{detail}") from (
                missed
            )
        reply = self.status(request_id)
        assert reply.status_code == 200, reply.text
        return reply.json()

    # worker side
    def pop(
        self, name: str, *, apikey: str | None = None, models: list[str] | None = None, **extra: Any
    ) -> httpx.Response:
        body: dict[str, Any] = {
            "name": name,
            "models": models if models is not None else [TINY_MODEL],
            "max_pixels": 512 * 512,
            "bridge_agent": "krita-horde-sim-worker:1:none",
        }
        body.update(extra)
        return self.call("POST", "/generate/pop", apikey=apikey, json=body)

    def submit(
        self,
        job_id: str,
        *,
        apikey: str | None = None,
        generation: str | None = None,
        state: str = "ok",
        seed: int = 0,
    ) -> httpx.Response:
        body = {
            "id": job_id,
            "generation": generation if generation is not None else webp_b64(64, 64, tag=job_id),
            "seed": seed,
            "state": state,
        }
        return self.call("POST", "/generate/submit", apikey=apikey, json=body)


@dataclass
class SimWorkerRecord:
    popped: list[str] = field(default_factory=list)
    submitted: list[str] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)
    duplicate: list[str] = field(default_factory=list)
    transport_errors: int = 0


class SimWorker:
    """A worker in a thread: pop, submit a WebP, repeat; retries transport errors with backoff.

    A submit whose reply was lost is retried; `DuplicateGen` then means the first one landed, so
    the job counts as submitted once (which is what the exactly-once promise is about).
    With `upload_verify` (what to trust for the bucket: a CA file or True), a job that comes with
    an `r2_upload` URL has its WebP PUT there and is submitted as `R2`, as real workers do when
    the horde keeps results in a bucket.
    """

    def __init__(
        self,
        api: str,
        apikey: str,
        name: str,
        *,
        models: list[str] | None = None,
        idle_interval: float = 0.05,
        max_backoff: float = 1.0,
        verify: str | bool = True,
        upload_verify: str | bool | None = None,
    ) -> None:
        self.client = HordeClient(api, apikey, timeout=5.0, verify=verify)
        self._uploads = None if upload_verify is None else httpx.Client(verify=upload_verify)
        self.name = name
        self.models = models
        self.idle_interval = idle_interval
        self.max_backoff = max_backoff
        self.record = SimWorkerRecord()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sim-worker-{name}", daemon=True)

    def start(self) -> SimWorker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)
        self.client.close()
        if self._uploads is not None:
            self._uploads.close()

    def __enter__(self) -> SimWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _retrying(self, call: Callable[[], httpx.Response]) -> httpx.Response | None:
        backoff = 0.05
        while not self._stop.is_set():
            try:
                reply = call()
            except httpx.TransportError:
                self.record.transport_errors += 1
            else:
                if reply.status_code < 500:
                    return reply
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self.max_backoff)
        return None

    def _run(self) -> None:
        while not self._stop.is_set():
            reply = self._retrying(lambda: self.client.pop(self.name, models=self.models))
            if reply is None:
                return
            job = reply.json() if reply.status_code == 200 else {}
            job_id = job.get("id")
            if not job_id:
                self._stop.wait(self.idle_interval)
                continue
            self.record.popped.append(job_id)
            submitted = self._retrying(lambda job=job: self._deliver(job))
            if submitted is None:
                return
            rc = submitted.json().get("rc") if submitted.status_code != 200 else None
            if submitted.status_code == 200:
                self.record.submitted.append(job_id)
            elif rc == "DuplicateGen":
                self.record.duplicate.append(job_id)
            elif rc == "AbortedGen":
                self.record.aborted.append(job_id)

    def _deliver(self, job: dict[str, Any]) -> httpx.Response:
        upload = job.get("r2_upload")
        if upload and self._uploads is not None:
            image = image_bytes(64, 64, tag=job["id"])
            put = self._uploads.put(upload, content=image, headers={"Content-Type": "image/webp"})
            put.raise_for_status()
            return self.client.submit(job["id"], generation="R2")
        return self.client.submit(job["id"])
