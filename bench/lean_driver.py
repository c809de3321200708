"""A lean load driver for the lifecycle benchmark: cheaper per lifecycle than the server it drives.

The httpx driver of the fault tests (tests/faults/load.py) spends more CPU per lifecycle than the
server, so with both on one machine it measures itself. This one speaks just enough HTTP/1.1 over
asyncio streams: one keep-alive connection per simulated party, requests written as prepared
bytes, replies read by Content-Length. Several processes share the parties, each with its own
event loop; the parent collects their counts and latencies.

The lifecycle is the one of bench_lifecycle.py: a client does POST /generate/async → GET
/generate/check (long-poll, or plain polling with long_poll=0) until done → GET /generate/status;
a simulated worker does POST /generate/pop → POST /generate/submit (a small WebP).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tests.faults.horde_client import CLIENT_AGENT, SMALL_PARAMS, TINY_MODEL
from tests.faults.images import webp_b64
from tests.faults.load import LoadReport

IMAGES_PER_PROCESS = 32


@dataclass
class LeanPlan:
    """What one driver process runs; `clients`/`workers` are the global indexes it owns."""

    api: str
    client_keys: list[str]
    worker_key: str
    clients: list[int]
    workers: list[int]
    seconds: float
    long_poll: float
    poll_interval: float = 0.01
    drain_timeout: float = 60.0
    cpus: set[int] | None = None


def merge(into: LoadReport, part: LoadReport) -> None:
    """Add one driver process's report to the whole run's."""
    into.elapsed = max(into.elapsed, part.elapsed)
    into.queued += part.queued
    into.done += part.done
    into.faulted += part.faulted
    into.lost.extend(part.lost)
    into.submitted += part.submitted
    into.errors.update(part.errors)
    for call, values in part.latencies.items():
        into.latencies[call].extend(values)


class HttpError(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection; a reply must carry Content-Length (uvicorn's do)."""

    def __init__(self, host: str, port: int, prefix: str) -> None:
        self.host, self.port, self.prefix = host, port, prefix
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, key: str, body: bytes | None = None
    ) -> tuple[int, Any]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (
            f"{method} {self.prefix}{path} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"apikey: {key}\r\nClient-Agent: {CLIENT_AGENT}\r\n"
        )
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        assert self.reader is not None
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            await self.close()
            raise HttpError(type(exc).__name__) from exc
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = None
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        if length is None:
            await self.close()
            raise HttpError("no Content-Length")
        payload = await self.reader.readexactly(length) if length else b""
        if close:
            await self.close()
        return status, json.loads(payload) if payload else None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
            self.reader = None


class _Process:
    def __init__(self, plan: LeanPlan) -> None:
        self.plan = plan
        url = urlsplit(plan.api)
        self.host, self.port, self.prefix = url.hostname or "127.0.0.1", url.port or 80, url.path
        self.report = LoadReport(len(plan.clients), len(plan.workers), plan.seconds)
        self.stop_queueing = asyncio.Event()
        self.clients_done = asyncio.Event()
        tag = f"{os.getpid()}"
        self.images = [webp_b64(64, 64, tag=f"{tag}-{i}") for i in range(IMAGES_PER_PROCESS)]

    def connection(self) -> Connection:
        return Connection(self.host, self.port, self.prefix)

    async def call(
        self, conn: Connection, name: str, method: str, path: str, key: str, body: Any = None
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        started = time.perf_counter()
        try:
            status, reply = await conn.request(method, path, key, data)
        except HttpError as exc:
            self.report.errors[f"{name}:{exc}"] += 1
            raise
        self.report.latencies[name].append(time.perf_counter() - started)
        if status >= 400:
            rc = reply.get("rc", "") if isinstance(reply, dict) else ""
            self.report.errors[f"{name}:{status}:{rc}"] += 1
        return status, reply

    async def client(self, index: int) -> None:
        plan = self.plan
        key = plan.client_keys[index % len(plan.client_keys)]
        conn = self.connection()
        body = {
            "prompt": f"load client {index}",
            "params": {**SMALL_PARAMS, "n": 1},
            "models": [TINY_MODEL],
            "r2": False,
        }
        check_query = f"?wait={plan.long_poll:g}" if plan.long_poll else ""
        while not self.stop_queueing.is_set():
            try:
                status, reply = await self.call(conn, "async", "POST", "/generate/async", key, body)
            except HttpError:
                await asyncio.sleep(plan.poll_interval)
                continue
            if status != 202:
                await asyncio.sleep(plan.poll_interval)
                continue
            self.report.queued += 1
            await self.follow(conn, reply["id"], key, check_query)
        await conn.close()

    async def follow(self, conn: Connection, request_id: str, key: str, query: str) -> None:
        deadline = time.monotonic() + self.plan.drain_timeout
        while time.monotonic() < deadline:
            try:
                status, reply = await self.call(
                    conn, "check", "GET", f"/generate/check/{request_id}{query}", key
                )
            except HttpError:
                await asyncio.sleep(self.plan.poll_interval)
                continue
            if status == 200 and (reply.get("done") or reply.get("faulted")):
                break
            if not self.plan.long_poll:
                await asyncio.sleep(self.plan.poll_interval)
        else:
            self.report.lost.append(request_id)
            return
        _, status_reply = await self.call(
            conn, "status", "GET", f"/generate/status/{request_id}", key
        )
        if status_reply.get("faulted"):
            self.report.faulted += 1
        else:
            self.report.done += 1

    async def worker(self, index: int) -> None:
        plan = self.plan
        conn = self.connection()
        pop_body = {
            "name": f"load-worker-{index}",
            "models": [TINY_MODEL],
            "max_pixels": 512 * 512,
            "bridge_agent": "krita-horde-load:1:none",
        }
        idle = plan.poll_interval
        sent = 0
        while not self.clients_done.is_set():
            try:
                status, reply = await self.call(
                    conn, "pop", "POST", "/generate/pop", plan.worker_key, pop_body
                )
            except HttpError:
                await asyncio.sleep(plan.poll_interval)
                continue
            job_id = reply.get("id") if status == 200 else None
            if not job_id:
                self.report.latencies["pop(empty)"].append(self.report.latencies["pop"].pop())
                # Idle back-off as real workers do (and as the httpx driver does).
                await asyncio.sleep(idle)
                idle = min(idle * 2, 0.05)
                continue
            idle = plan.poll_interval
            image = self.images[sent % len(self.images)]
            sent += 1
            submit = {"id": job_id, "generation": image, "seed": 1, "state": "ok"}
            try:
                status, _ = await self.call(
                    conn, "submit", "POST", "/generate/submit", plan.worker_key, submit
                )
            except HttpError:
                continue
            if status == 200:
                self.report.submitted += 1
        await conn.close()

    async def run(self, start_at: float) -> LoadReport:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        started = time.perf_counter()
        workers = [asyncio.create_task(self.worker(i)) for i in self.plan.workers]
        clients = [asyncio.create_task(self.client(i)) for i in self.plan.clients]
        await asyncio.sleep(self.plan.seconds)
        self.stop_queueing.set()
        await asyncio.gather(*clients)
        self.report.elapsed = time.perf_counter() - started
        self.clients_done.set()
        await asyncio.gather(*workers)
        return self.report


def _child(plan: LeanPlan, start_at: float, out: Any) -> None:
    if plan.cpus:
        os.sched_setaffinity(0, plan.cpus)
    report = asyncio.run(_Process(plan).run(start_at))
    report.latencies = dict(report.latencies)  # type: ignore[assignment]  # picklable
    out.send(report)
    out.close()


def split_plan(base: LeanPlan, clients: int, workers: int, processes: int) -> list[LeanPlan]:
    """Deal the clients and workers round-robin over `processes` plans."""
    plans = []
    for p in range(processes):
        plans.append(
            LeanPlan(
                **{
                    **base.__dict__,
                    "clients": list(range(p, clients, processes)),
                    "workers": list(range(p, workers, processes)),
                }
            )
        )
    return plans


def run_lean_load(plans: list[LeanPlan]) -> LoadReport:
    """Run every plan in its own process (forked, so nothing is re-imported) and merge their
    reports. The processes are joined before this returns, so their CPU shows in the caller's
    `os.times()` children fields."""
    context = multiprocessing.get_context("fork")
    start_at = time.time() + 0.3
    pipes, processes = [], []
    for plan in plans:
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=_child, args=(plan, start_at, sender))
        process.start()
        sender.close()
        pipes.append(receiver)
        processes.append(process)
    report = LoadReport(
        sum(len(plan.clients) for plan in plans),
        sum(len(plan.workers) for plan in plans),
        plans[0].seconds if plans else 0.0,
    )
    for receiver in pipes:
        merge(report, receiver.recv())
    for process in processes:
        process.join()
    return report


async def _sequential_pops(api: str, worker_key: str, count: int) -> int:
    url = urlsplit(api)
    conn = Connection(url.hostname or "127.0.0.1", url.port or 80, url.path)
    body = json.dumps(
        {
            "name": "empty-pop-worker",
            "models": [TINY_MODEL],
            "max_pixels": 512 * 512,
            "bridge_agent": "krita-horde-load:1:none",
        }
    ).encode()
    empty = 0
    for _ in range(count):
        status, reply = await conn.request("POST", "/generate/pop", worker_key, body)
        empty += status == 200 and not reply.get("id")
    await conn.close()
    return empty


def empty_pops(api: str, worker_key: str, count: int) -> int:
    """`count` pops one after another on one keep-alive connection, against an empty queue;
    returns how many were indeed empty."""
    return asyncio.run(_sequential_pops(api, worker_key, count))
