"""Lifecycle throughput of the horde API and the server-side CPU each lifecycle costs, with C
concurrent clients and K simulated workers over loopback HTTP.

    .venv/bin/python bench/bench_lifecycle.py [--modes embedded,redis+postgres] [--runs 3]
                [--clients 8] [--workers 4] [--seconds 8] [--long-poll 10] [--filters 0,300]
                [--driver lean|httpx] [--driver-processes 2] [--against DIR]

One lifecycle = POST /generate/async → GET /generate/check (long-poll, our extension; plain
polling with --long-poll 0) until done → GET /generate/status; meanwhile a worker does
POST /generate/pop → POST /generate/submit (a 64×64 WebP).

Method (bench/server_side.py): the driver is pinned to the first CPU, the server side to the
others (`taskset`): the API processes (`HORDE_PROCESSES` = one per server CPU), a Redis of the
benchmark's own and the PostgreSQL backends of the API's connections. Their CPU (utime + stime
from /proc) over the run, divided by the lifecycles done, is the server CPU per lifecycle — a
figure that other load on the machine moves much less than lifecycles/s. The default driver
(bench/lean_driver.py: raw keep-alive HTTP in several processes) costs less per lifecycle than
the server; `--driver httpx` is the fault tests' driver, for comparison.

--against DIR runs every measurement also against the horde_api checked out in DIR (an older
commit: `./run bench --only lifecycle --against REV` makes that checkout), the two servers
alternating run by run with the same driver, and prints new ÷ old ratios of each run pair.

--filters 0,300 runs each mode with no prompt filters and with 300 (none matches the bench's
prompts, so every prompt is checked against all of them), interleaved.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from _common import REDIS_URL, machine, median, percentile, running_horde
from _filters import add_filters, filter_check_microseconds
from _record import record
from lean_driver import LeanPlan, empty_pops, run_lean_load, split_plan
from server_side import (
    PostgresBackends,
    ServerMeter,
    own_redis,
    pin,
    split_cpus,
    taskset_prefix,
)

from tests.faults.load import LoadReport, run_load

CALLS = ("async", "check", "status", "pop", "pop(empty)", "submit")
# More than one janitor interval (HORDE_JANITOR_INTERVAL_SECONDS, 1 s by default).
SETTLE_SECONDS = 1.5


@dataclass
class RunResult:
    rate: float
    done: int
    lost: int
    errors: int
    server_ms: float  # server-side CPU per lifecycle
    api_ms: float
    redis_ms: float
    postgres_ms: float
    driver_ms: float
    server_core: float  # server-side CPU ÷ wall time ÷ server CPUs
    empty_pop_ms: float  # server-side CPU of one pop on an empty queue, before the load
    p50: dict[str, float]
    p99: dict[str, float]


def _drive(
    api: str,
    client_keys: list[str],
    worker_key: str,
    args: argparse.Namespace,
    cpus: tuple[set[int], set[int]] | None,
) -> LoadReport:
    if args.driver == "lean":
        base = LeanPlan(
            api=api,
            client_keys=client_keys,
            worker_key=worker_key,
            clients=[],
            workers=[],
            seconds=args.seconds,
            long_poll=args.long_poll,
            cpus=cpus[0] if cpus else None,
        )
        return run_lean_load(split_plan(base, args.clients, args.workers, args.driver_processes))
    own = os.sched_getaffinity(0)
    pin([0], cpus[0] if cpus else None)
    try:
        report = asyncio.run(
            run_load(
                api,
                client_keys,
                worker_key,
                clients=args.clients,
                workers=args.workers,
                seconds=args.seconds,
                long_poll=args.long_poll,
                poll_interval=0.01,
            )
        )
    finally:
        os.sched_setaffinity(0, own)
    return report


@contextlib.contextmanager
def profiling(
    out_dir: Path | None, pid: int, mode: str, cpus: tuple[set[int], set[int]] | None
) -> Iterator[None]:
    """py-spy on the API processes while the load runs (on the driver's CPU), its collapsed
    stacks written to out_dir: where the server's CPU goes."""
    if out_dir is None:
        yield
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{mode}-{time.strftime('%H%M%S')}.txt"
    # The venv's py-spy: `./run bench` does not put the venv's bin/ on PATH.
    spy_path = Path(sys.executable).parent / "py-spy"
    command = [*taskset_prefix(cpus[0] if cpus else None), str(spy_path), "record", "--pid"]
    command.append(str(pid))
    command += ["--subprocesses", "--nonblocking", "--gil", "--rate", "200", "--format", "raw"]
    spy = subprocess.Popen([*command, "--output", str(out)], stdout=subprocess.DEVNULL)
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)
        print(f"  profile: {out}", flush=True)


def _empty_pop_cpu(
    api: str,
    worker_key: str,
    count: int,
    meter: ServerMeter,
    cpus: tuple[set[int], set[int]] | None,
) -> float:
    """Server-side CPU (ms) of one pop on an empty queue: `count` pops one after another."""
    if count <= 0:
        return float("nan")
    own = os.sched_getaffinity(0)
    pin([0], cpus[0] if cpus else None)
    try:
        with meter.measuring() as used:
            empty = empty_pops(api, worker_key, count)
    finally:
        os.sched_setaffinity(0, own)
    if empty != count:
        raise RuntimeError(f"{count - empty} of {count} pops on an empty queue were not empty")
    return used["total"] / count * 1e3


def one_run(
    mode: str,
    args: argparse.Namespace,
    redis: tuple[str, int | None],
    filters: int = 0,
    code_root: Path | None = None,
) -> RunResult:
    """One run on a fresh server."""
    cpus = split_cpus()
    server_cpus = cpus[1] if cpus else None
    app_name = f"horde-bench-{uuid.uuid4().hex[:8]}"
    env = {"HORDE_PROCESSES": str(len(server_cpus))} if server_cpus and mode != "embedded" else {}
    with running_horde(
        mode,
        env,
        redis_url=redis[0],
        application_name=app_name,
        launcher=taskset_prefix(server_cpus),
        code_root=code_root,
    ) as live:
        if filters:
            add_filters(live.api, live.create_user("bench-moderator", moderator=True), filters)
        client_keys = [live.create_user(f"bench-client-{i}") for i in range(4)]
        worker_key = live.create_user("bench-workers", trusted=True)
        embedded = mode == "embedded"
        postgres = None if embedded else PostgresBackends(POSTGRES_ADMIN, app_name, server_cpus)
        meter = ServerMeter(live.process.pid, None if embedded else redis[1], postgres)
        pop_ms = _empty_pop_cpu(live.api, worker_key, args.empty_pops, meter, cpus)
        driver_before = os.times()
        wall = time.perf_counter()
        with meter.measuring() as used, profiling(args.profile, live.process.pid, mode, cpus):
            report = _drive(live.api, client_keys, worker_key, args, cpus)
            busy = time.perf_counter() - wall
            # Part of a lifecycle's cost is deferred to the next janitor pass (settling its
            # kudos): keep counting until that pass has run. An idle server uses < 1 % of a core.
            time.sleep(SETTLE_SECONDS)
        wall = busy
        driver_after = os.times()
    driver_cpu = sum(driver_after[:4]) - sum(driver_before[:4])
    done = max(report.done, 1)
    result = RunResult(
        rate=report.lifecycles_per_second,
        done=report.done,
        lost=len(report.lost),
        errors=sum(report.errors.values()),
        server_ms=used["total"] / done * 1e3,
        api_ms=used["api"] / done * 1e3,
        redis_ms=used["redis"] / done * 1e3,
        postgres_ms=used["postgres"] / done * 1e3,
        driver_ms=driver_cpu / done * 1e3,
        server_core=used["total"] / wall / (len(server_cpus) if server_cpus else 1),
        empty_pop_ms=pop_ms,
        p50={c: percentile(v, 50) * 1e3 for c, v in report.latencies.items()},
        p99={c: percentile(v, 99) * 1e3 for c, v in report.latencies.items()},
    )
    print(
        f"  {mode}{' [' + str(code_root) + ']' if code_root else ''} ({filters} filters):"
        f" {result.rate:.1f} lifecycles/s, server side {result.server_ms:.2f} ms CPU per"
        f" lifecycle (API {result.api_ms:.2f}, Redis {result.redis_ms:.2f}, PostgreSQL"
        f" {result.postgres_ms:.2f}; {result.server_core:.0%} of its core), driver"
        f" {result.driver_ms:.2f} ms; empty pop {result.empty_pop_ms:.2f} ms CPU; calls: "
        + ", ".join(f"{c}={len(v)}" for c, v in sorted(report.latencies.items()))
        + (f"; errors {dict(report.errors)}" if report.errors else ""),
        flush=True,
    )
    return result


POSTGRES_ADMIN = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test"
)


def summarize(label: str, results: list[RunResult]) -> None:
    row = (
        f"{label:<30}{median([r.rate for r in results]):>10.1f}"
        f"{median([r.server_ms for r in results]):>9.2f}"
        f"{median([r.api_ms for r in results]):>7.2f}"
        f"{median([r.redis_ms for r in results]):>7.2f}"
        f"{median([r.postgres_ms for r in results]):>7.2f}"
        f"{median([r.driver_ms for r in results]):>8.2f}"
        f"{median([r.empty_pop_ms for r in results]):>8.2f}"
        f"{sum(r.lost for r in results):>6}{sum(r.errors for r in results):>7}"
    )
    for call in CALLS:
        p50 = [r.p50[call] for r in results if call in r.p50]
        p99 = [r.p99[call] for r in results if call in r.p99]
        cell = f"{median(p50):.1f}/{median(p99):.1f}" if p50 else "-"
        row += f"{cell:>16}"
    print(row, flush=True)
    print(
        "    runs: " + ", ".join(f"{r.rate:.1f}/s {r.server_ms:.2f} ms" for r in results),
        flush=True,
    )


def record_figures(label: str, results: list[RunResult]) -> None:
    record("lifecycle", f"{label} lifecycles/s", round(median([r.rate for r in results]), 1), "1/s")
    target = "≤ 3" if "redis" in label else ""
    cpu = round(median([r.server_ms for r in results]), 2)
    record("lifecycle", f"{label} server CPU/lifecycle", cpu, "ms", target)
    pop = round(median([r.empty_pop_ms for r in results]), 2)
    record("lifecycle", f"{label} server CPU/empty pop", pop, "ms")
    for call in CALLS:
        p99 = [r.p99[call] for r in results if call in r.p99]
        if p99:
            record("lifecycle", f"{label} {call} p99", round(median(p99), 1), "ms")


def print_ratios(label: str, new: list[RunResult], old: list[RunResult]) -> None:
    """new ÷ old per run pair (runs alternated), then the median of the pairs."""
    pairs = list(zip(new, old, strict=True))
    figures = {
        "server CPU/lifecycle": [n.server_ms / o.server_ms for n, o in pairs],
        "lifecycles/s": [n.rate / o.rate for n, o in pairs],
        "empty pop CPU": [n.empty_pop_ms / o.empty_pop_ms for n, o in pairs],
        **{
            f"{call} p50": [n.p50[call] / o.p50[call] for n, o in pairs]
            for call in CALLS
            if all(call in n.p50 and call in o.p50 for n, o in pairs)
        },
    }
    print(f"{label}: current ÷ against, per run pair (median)")
    for name, ratios in figures.items():
        shown = ", ".join(f"{r:.2f}" for r in ratios)
        print(f"    {name:<22}{median(ratios):>6.2f}   ({shown})", flush=True)
        record("lifecycle", f"{label} {name} current÷against", round(median(ratios), 3), "ratio")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="embedded,redis+postgres")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--long-poll", type=float, default=10)
    parser.add_argument("--filters", default="0", help="prompt filter counts, e.g. 0,300")
    parser.add_argument("--driver", choices=("lean", "httpx"), default="lean")
    parser.add_argument("--driver-processes", type=int, default=2)
    parser.add_argument("--empty-pops", type=int, default=300, help="pops timed on an empty queue")
    parser.add_argument("--against", type=Path, help="a checkout of older code to compare with")
    parser.add_argument("--profile", type=Path, help="write py-spy profiles of the API here")
    args = parser.parse_args()
    filter_counts = [int(count) for count in args.filters.split(",")]
    cpus = split_cpus()

    print(f"lifecycle throughput and server CPU — {machine()}")
    print(
        f"clients={args.clients} workers={args.workers} T={args.seconds:g}s runs={args.runs}"
        f" long-poll={args.long_poll:g}s driver={args.driver}"
        + (f"×{args.driver_processes}" if args.driver == "lean" else "")
        + (
            f"; driver on CPU {sorted(cpus[0])}, server side on CPU {sorted(cpus[1])}"
            if cpus
            else "; one CPU: nothing pinned"
        )
        + (f"; against {args.against}" if args.against else "")
    )
    for count in filter_counts:
        if count:
            re2_us, re_us = filter_check_microseconds(count)
            print(
                f"one prompt checked against {count} filters: {re2_us:.1f} µs"
                f" (Python re: {re_us:.1f} µs, {re_us / re2_us:.0f}x)",
                flush=True,
            )
            record("lifecycle", f"prompt check, {count} filters", round(re2_us, 1), "µs")
    roots: list[tuple[str, Path | None]] = [("current", None)]
    if args.against:
        roots.append(("against", args.against.resolve()))
    results: dict[tuple[str, int, str], list[RunResult]] = defaultdict(list)
    with own_redis(cpus[1] if cpus else None) as redis:
        if redis[0] == REDIS_URL:
            print("  (no redis-server binary: the shared Redis is used, its CPU not counted)")
        for mode in args.modes.split(","):
            for _ in range(args.runs):
                # Interleaved: every variant sees the same machine, run after run.
                for count in filter_counts:
                    for name, root in roots:
                        results[(mode, count, name)].append(one_run(mode, args, redis, count, root))
    header = (
        f"{'mode':<30}{'lc/s':>10}{'srv ms':>9}{'api':>7}{'redis':>7}{'pg':>7}{'drv ms':>8}"
        f"{'pop∅ ms':>8}{'lost':>6}{'errors':>7}"
    )
    header += "".join(f"{c + ' p50/p99':>16}" for c in CALLS)
    print("\nmedians over the runs; CPU in ms per lifecycle; latencies in ms")
    print(header)
    for (mode, count, name), runs in results.items():
        label = mode + (f", {count} filters" if len(filter_counts) > 1 else "")
        label += f" [{name}]" if args.against else ""
        summarize(label, runs)
        record_figures(label, runs)
    if args.against:
        for mode in args.modes.split(","):
            for count in filter_counts:
                label = mode + (f", {count} filters" if len(filter_counts) > 1 else "")
                print_ratios(
                    label, results[(mode, count, "current")], results[(mode, count, "against")]
                )


if __name__ == "__main__":
    main()
