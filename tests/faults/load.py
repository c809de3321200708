"""An asyncio load driver: N clients and M simulated workers against a running horde for T seconds.

Clients queue small requests, wait for each to finish and read its results; workers pop and submit
a tiny WebP per job. After T seconds no new request is queued and the run drains: every request
queued must reach a final state before `drain_timeout`, or it counts as lost. Used by the bounded
load test (tests/faults/test_load.py) and by bench/bench_load.py / bench/bench_lifecycle.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.faults.horde_client import CLIENT_AGENT, SMALL_PARAMS, TINY_MODEL
from tests.faults.images import webp_b64


@dataclass
class LoadReport:
    clients: int
    workers: int
    seconds: float
    elapsed: float = 0.0
    queued: int = 0
    done: int = 0
    faulted: int = 0
    lost: list[str] = field(default_factory=list)
    wrong_image_count: list[str] = field(default_factory=list)
    duplicated_images: list[str] = field(default_factory=list)
    submitted: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    @property
    def lifecycles_per_second(self) -> float:
        return self.done / self.elapsed if self.elapsed else 0.0

    def percentile(self, call: str, pct: float) -> float:
        values = sorted(self.latencies.get(call, []))
        if not values:
            return float("nan")
        index = min(len(values) - 1, max(0, round(pct / 100 * (len(values) - 1))))
        return values[index]

    def table(self) -> str:
        lines = [
            f"clients={self.clients} workers={self.workers} T={self.seconds:.0f}s "
            f"elapsed={self.elapsed:.1f}s queued={self.queued} done={self.done} "
            f"faulted={self.faulted} lost={len(self.lost)} dup={len(self.duplicated_images)} "
            f"lifecycles/s={self.lifecycles_per_second:.1f}",
            f"{'call':<16}{'count':>8}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}",
        ]
        for call in sorted(self.latencies):
            values = self.latencies[call]
            lines.append(
                f"{call:<16}{len(values):>8}{self.percentile(call, 50) * 1e3:>10.1f}"
                f"{self.percentile(call, 99) * 1e3:>10.1f}{statistics.fmean(values) * 1e3:>10.1f}"
            )
        if self.errors:
            lines.append("errors: " + ", ".join(f"{k}={v}" for k, v in self.errors.items()))
        return "\n".join(lines)


class _Driver:
    def __init__(
        self,
        api: str,
        client_keys: list[str],
        worker_key: str,
        report: LoadReport,
        *,
        n_per_request: int,
        model: str,
        poll_interval: float,
        long_poll: float,
    ) -> None:
        self.long_poll = long_poll
        self.api = api.rstrip("/")
        self.client_keys = client_keys
        self.worker_key = worker_key
        self.report = report
        self.n = n_per_request
        self.model = model
        self.poll_interval = poll_interval
        self.stop_queueing = asyncio.Event()
        self.all_clients_done = asyncio.Event()
        limits = httpx.Limits(max_connections=report.clients + report.workers + 4)
        self.http = httpx.AsyncClient(timeout=30.0, limits=limits)
        self.image = webp_b64(64, 64, tag="load")

    async def call(self, name: str, method: str, path: str, key: str, **kw: Any) -> httpx.Response:
        started = time.perf_counter()
        try:
            reply = await self.http.request(
                method,
                self.api + path,
                headers={"apikey": key, "Client-Agent": CLIENT_AGENT},
                **kw,
            )
        except httpx.TransportError as exc:
            self.report.errors[f"{name}:{type(exc).__name__}"] += 1
            raise
        self.report.latencies[name].append(time.perf_counter() - started)
        if reply.status_code >= 400:
            rc = ""
            with contextlib.suppress(ValueError):
                rc = reply.json().get("rc", "")
            self.report.errors[f"{name}:{reply.status_code}:{rc}"] += 1
        return reply

    async def client(self, index: int) -> None:
        key = self.client_keys[index % len(self.client_keys)]
        body = {
            "prompt": f"load client {index}",
            "params": {**SMALL_PARAMS, "n": self.n},
            "models": [self.model],
            "r2": False,
        }
        while not self.stop_queueing.is_set():
            try:
                reply = await self.call("async", "POST", "/generate/async", key, json=body)
            except httpx.TransportError:
                await asyncio.sleep(self.poll_interval)
                continue
            if reply.status_code != 202:
                await asyncio.sleep(self.poll_interval)
                continue
            self.report.queued += 1
            await self.follow(reply.json()["id"], key)

    async def follow(self, request_id: str, key: str) -> None:
        deadline = time.monotonic() + self.drain_timeout
        path = f"/generate/check/{request_id}"
        if self.long_poll:
            # Our extension: the reply comes as soon as the request changes (or after S s).
            path += f"?wait={self.long_poll:g}"
        while time.monotonic() < deadline:
            try:
                reply = await self.call("check", "GET", path, key)
            except httpx.TransportError:
                await asyncio.sleep(self.poll_interval)
                continue
            body = reply.json() if reply.status_code == 200 else {}
            if body.get("done") or body.get("faulted"):
                break
            if not self.long_poll:
                await asyncio.sleep(self.poll_interval)
        else:
            self.report.lost.append(request_id)
            return
        reply = await self.call("status", "GET", f"/generate/status/{request_id}", key)
        status = reply.json()
        if status.get("faulted"):
            self.report.faulted += 1
            return
        self.report.done += 1
        job_ids = [generation["id"] for generation in status.get("generations", [])]
        images = [generation["img"] for generation in status.get("generations", [])]
        if len(job_ids) != self.n:
            self.report.wrong_image_count.append(request_id)
        if len(set(job_ids)) != len(job_ids) or len(set(images)) != len(images):
            self.report.duplicated_images.append(request_id)

    async def worker(self, index: int) -> None:
        pop_body = {
            "name": f"load-worker-{index}",
            "models": [self.model],
            "max_pixels": 512 * 512,
            "bridge_agent": "krita-horde-load:1:none",
        }
        idle = self.poll_interval
        while not self.all_clients_done.is_set():
            try:
                reply = await self.call(
                    "pop", "POST", "/generate/pop", self.worker_key, json=pop_body
                )
            except httpx.TransportError:
                await asyncio.sleep(self.poll_interval)
                continue
            job_id = reply.json().get("id") if reply.status_code == 200 else None
            if not job_id:
                self.report.latencies["pop(empty)"].append(self.report.latencies["pop"].pop())
                # Idle backoff, as real workers do: an empty queue is not polled in a hot loop.
                await asyncio.sleep(idle)
                idle = min(idle * 2, 0.05)
                continue
            idle = self.poll_interval
            # Each job's image is distinct (its id in the pixels) so duplicates would show.
            image = webp_b64(64, 64, tag=job_id)
            submit = {"id": job_id, "generation": image, "seed": 1, "state": "ok"}
            try:
                reply = await self.call(
                    "submit", "POST", "/generate/submit", self.worker_key, json=submit
                )
            except httpx.TransportError:
                continue
            if reply.status_code == 200:
                self.report.submitted += 1

    drain_timeout: float = 60.0


async def run_load(
    api: str,
    client_keys: list[str],
    worker_key: str,
    *,
    clients: int,
    workers: int,
    seconds: float,
    n_per_request: int = 1,
    model: str = TINY_MODEL,
    poll_interval: float = 0.02,
    long_poll: float = 0.0,
    drain_timeout: float = 60.0,
) -> LoadReport:
    """Drive the horde at `api` (base + /api/v2) and return what happened."""
    report = LoadReport(clients=clients, workers=workers, seconds=seconds)
    driver = _Driver(
        api,
        client_keys,
        worker_key,
        report,
        n_per_request=n_per_request,
        model=model,
        poll_interval=poll_interval,
        long_poll=long_poll,
    )
    driver.drain_timeout = drain_timeout
    started = time.perf_counter()
    worker_tasks = [asyncio.create_task(driver.worker(i)) for i in range(workers)]
    client_tasks = [asyncio.create_task(driver.client(i)) for i in range(clients)]
    await asyncio.sleep(seconds)
    driver.stop_queueing.set()
    await asyncio.gather(*client_tasks)
    report.elapsed = time.perf_counter() - started
    driver.all_clients_done.set()
    await asyncio.gather(*worker_tasks)
    await driver.http.aclose()
    return report
