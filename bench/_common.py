"""Shared pieces of the horde benchmarks: start a real horde in either storage mode, describe the
machine, summarise repeated runs. The benchmarks drive it over loopback HTTP with the load driver
of the fault tests (tests/faults/load.py)."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import sys
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")

# Benchmarks measure the queue, not the limits: lift them (they are tested in tests/faults/).
NO_LIMITS = {
    "HORDE_RATE_LIMIT_PER_KEY_PER_MINUTE": "100000000",
    "HORDE_RATE_LIMIT_PER_IP_PER_MINUTE": "100000000",
    "HORDE_DEFAULT_CONCURRENCY": "100000",
}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="ascii") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"{now}, {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def _drop_redis_prefix(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        batch = []
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                client.delete(*batch)
                batch.clear()
        if batch:
            client.delete(*batch)
    finally:
        client.close()


@contextlib.contextmanager
def _bench_dir() -> Iterator[str]:
    """A temp dir for the server's data and log; kept (and named) with BENCH_KEEP_LOGS=1 so that
    errors seen during a run can be read in the server's log afterwards."""
    if os.environ.get("BENCH_KEEP_LOGS") == "1":
        path = tempfile.mkdtemp(prefix="horde-bench-")
        print(f"  (server data and log kept in {path})", flush=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="horde-bench-") as tmp:
        yield tmp


@contextlib.contextmanager
def running_horde(
    mode: str,
    extra_env: dict[str, str] | None = None,
    *,
    redis_url: str = REDIS_URL,
    application_name: str = "",
    launcher: list[str] | None = None,
    code_root: Path | None = None,
) -> Iterator[Any]:
    """A `horde-api serve` subprocess: mode "embedded" or "redis+postgres". `application_name`
    names the server's PostgreSQL connections (so their backends can be found);
    `launcher` wraps the command (taskset); `code_root` runs an older checkout's code."""
    from tests.helpers.live_horde import start_horde
    from tests.helpers.postgres import fresh_schema

    env = {**NO_LIMITS, **(extra_env or {})}
    started = {"launcher": launcher or (), "code_root": code_root, "extra_env": env}
    with _bench_dir() as tmp:
        if mode == "embedded":
            with start_horde(Path(tmp), **started) as live:
                yield live
            return
        prefix = f"bench-{uuid.uuid4().hex[:10]}:"
        with fresh_schema(POSTGRES_URL, prefix="bench") as database_url:
            if application_name:
                database_url += f"&application_name={application_name}"
            try:
                with start_horde(
                    Path(tmp),
                    redis_url=redis_url,
                    redis_prefix=prefix,
                    database_url=database_url,
                    **started,
                ) as live:
                    yield live
            finally:
                _drop_redis_prefix(redis_url, prefix)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def process_tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its live children (the server's workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command name: state, ppid, …; utime and stime are fields 14 and 15 of stat.
        if int(entry) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total
