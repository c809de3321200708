"""The server side of a pinned benchmark: CPU placement and the CPU the server side spends.

"Server side" = the API processes (`horde-api serve` and the uvicorn processes it starts), a
Redis of the benchmark's own (started here, so no other user's commands are counted) and the
PostgreSQL backends serving the API's connections (found by their `application_name`). Their
user + system CPU is read from /proc/<pid>/stat before and after a run; PostgreSQL's shared
background processes (WAL writer, checkpointer) are not counted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

TICKS = os.sysconf("SC_CLK_TCK")


def split_cpus() -> tuple[set[int], set[int]] | None:
    """(driver CPUs, server CPUs): the first usable CPU drives, the rest serve; None on one CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[0]}, set(cpus[1:])


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the command name: state is field 3; utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / TICKS


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def pin(pids: list[int], cpus: set[int] | None) -> None:
    if not cpus:
        return
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.sched_setaffinity(pid, cpus)


def taskset_prefix(cpus: set[int] | None) -> list[str]:
    if not cpus or shutil.which("taskset") is None:
        return []
    return ["taskset", "-c", ",".join(str(c) for c in sorted(cpus))]


@contextlib.contextmanager
def own_redis(cpus: set[int] | None) -> Iterator[tuple[str, int | None]]:
    """A private redis-server (no persistence, as the shared one here) pinned to `cpus`;
    yields (url, pid). Falls back to TEST_REDIS_URL (pid None: its CPU is not counted) when the
    binary is missing."""
    shared = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    binary = shutil.which("redis-server")
    if binary is None:
        yield shared, None
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [*taskset_prefix(cpus), binary, "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"redis-server on port {port} did not start")
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0", process.pid
    finally:
        process.terminate()
        process.wait(10)


@dataclass
class PostgresBackends:
    """Follows the backends of connections named `application_name` while a run lasts: pins
    each new one to the server CPUs and keeps its last CPU reading (a backend that ends
    mid-run keeps what it had used when last seen)."""

    admin_url: str
    application_name: str
    cpus: set[int] | None
    interval: float = 0.25
    first: dict[int, float] = field(default_factory=dict)
    last: dict[int, float] = field(default_factory=dict)

    def _pids(self) -> list[int]:
        import psycopg

        url = self.admin_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                (self.application_name,),
            ).fetchall()
        return [int(row[0]) for row in rows]

    def poll(self, baseline: bool = False) -> None:
        for pid in self._pids():
            used = cpu_seconds(pid)
            if used is None:
                continue
            if pid not in self.first:
                pin([pid], self.cpus)
                self.first[pid] = used if baseline else 0.0
            self.last[pid] = used

    def used(self) -> float:
        return sum(self.last[pid] - self.first[pid] for pid in self.last)

    @contextlib.contextmanager
    def following(self) -> Iterator[None]:
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(self.interval):
                self.poll()

        self.poll(baseline=True)
        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            self.poll()


@dataclass
class ServerMeter:
    """CPU seconds of the server side over one run."""

    api_root: int
    redis_pid: int | None
    postgres: PostgresBackends | None
    before: dict[int, float] = field(default_factory=dict)

    def _processes(self) -> dict[int, float]:
        pids = process_tree(self.api_root)
        if self.redis_pid is not None:
            pids.append(self.redis_pid)
        readings = {pid: cpu_seconds(pid) for pid in pids}
        return {pid: used for pid, used in readings.items() if used is not None}

    @contextlib.contextmanager
    def measuring(self) -> Iterator[dict[str, float]]:
        """Yields a dict filled on exit: api, redis, postgres and total CPU seconds."""
        result: dict[str, float] = {}
        before = self._processes()
        follow = self.postgres.following() if self.postgres else contextlib.nullcontext()
        with follow:
            yield result
        after = self._processes()
        redis = 0.0
        if self.redis_pid is not None and self.redis_pid in after:
            redis = after[self.redis_pid] - before.get(self.redis_pid, 0.0)
        api = sum(
            used - before.get(pid, 0.0) for pid, used in after.items() if pid != self.redis_pid
        )
        result["api"] = api
        result["redis"] = redis
        result["postgres"] = self.postgres.used() if self.postgres else 0.0
        result["total"] = api + redis + result["postgres"]
