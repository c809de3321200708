"""Lifecycle throughput of the horde API: completed request lifecycles per second and the latency
of each call, with C concurrent clients and K simulated workers over loopback HTTP.

    .venv/bin/python bench/bench_lifecycle.py [--modes embedded,redis+postgres] [--runs 3]
                                              [--clients 8] [--workers 4] [--seconds 8]
                                              [--long-poll 10] [--filters 0,300]

One lifecycle = POST /generate/async → GET /generate/check (long-poll, our extension; plain
polling with --long-poll 0) until done → GET /generate/status; meanwhile a worker does
POST /generate/pop → POST /generate/submit (a 64×64 WebP). The table shows the median over
--runs runs (each on a fresh server) of lifecycles/s and of each call's p50/p99. Target (issue 3):
≥ 200 lifecycles/s with Redis + PostgreSQL on a 2-core machine. The driver runs on the same
machine and competes with the server for the CPU, so the figures are a lower bound.

--filters 0,300 runs each mode with no prompt filters and with 300 (added by a moderator through
/v2/filters; none matches the bench's prompts, so every prompt is checked against all of them),
the runs interleaved so both see the same machine; it also times one filter check in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import string
import time
from collections import defaultdict
from collections.abc import Callable

import httpx
from _common import machine, median, process_tree_cpu_seconds, running_horde
from _record import record

from horde_api.prompt_filters import CompiledFilters, FilterType
from tests.faults.load import LoadReport, run_load

CALLS = ("async", "check", "status", "pop", "pop(empty)", "submit")


FILTER_TYPES = (
    FilterType.MINORS,
    FilterType.MINORS_OTHER,
    FilterType.SEXUAL,
    FilterType.EXPLICIT_WORDS,
)


def bench_filters(count: int) -> list[tuple[int, str]]:
    """`count` filters shaped like real ones: word-bounded alternations of made-up words."""
    rng = random.Random(count)

    def word() -> str:
        return "".join(rng.choices(string.ascii_lowercase, k=rng.randint(5, 9)))

    return [
        (
            FILTER_TYPES[i % len(FILTER_TYPES)],
            r"\b(?:" + "|".join(word() for _ in range(4)) + r")s?\b",
        )
        for i in range(count)
    ]


def add_filters(api: str, key: str, count: int) -> None:
    with httpx.Client(base_url=api, headers={"apikey": key}, timeout=30) as client:
        for filter_type, regex in bench_filters(count):
            reply = client.put("/filters", json={"regex": regex, "filter_type": filter_type})
            reply.raise_for_status()


BENCH_PROMPT = "a watercolor painting of a lighthouse on a cliff at dusk, seagulls, " * 3


def _microseconds(check: Callable[[], object], calls: int) -> float:
    """One call of `check`, in µs (median of 5 passes)."""
    passes = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            check()
        passes.append((time.perf_counter() - started) / calls * 1e6)
    return median(passes)


def filter_check_microseconds(count: int) -> tuple[float, float]:
    """One prompt checked against `count` filters in-process: the horde's RE2 filters, and the
    same filters as Python `re` alternations (the engine RE2 replaced), side by side."""
    filters = bench_filters(count)
    compiled = CompiledFilters(filters)
    by_type: dict[int, list[str]] = defaultdict(list)
    for filter_type, regex in filters:
        by_type[filter_type].append(f"(?:{regex})")
    python_re = [re.compile("|".join(parts), re.IGNORECASE) for parts in by_type.values()]
    re2_us = _microseconds(lambda: compiled.check(BENCH_PROMPT, nsfw=False), 20_000)
    re_us = _microseconds(lambda: [p.search(BENCH_PROMPT) for p in python_re], 500)
    return re2_us, re_us


def one_run(mode: str, args: argparse.Namespace, filters: int = 0) -> LoadReport:
    """One run on a fresh server; also prints how much CPU the driver itself used, since it
    shares the machine with the server."""
    with running_horde(mode) as live:
        if filters:
            add_filters(live.api, live.create_user("bench-moderator", moderator=True), filters)
        client_keys = [live.create_user(f"bench-client-{i}") for i in range(4)]
        worker_key = live.create_user("bench-workers", trusted=True)
        cpu_before = time.process_time()
        server_before = process_tree_cpu_seconds(live.process.pid)
        report = asyncio.run(
            run_load(
                live.api,
                client_keys,
                worker_key,
                clients=args.clients,
                workers=args.workers,
                seconds=args.seconds,
                long_poll=args.long_poll,
                poll_interval=0.01,
            )
        )
        driver_cpu = time.process_time() - cpu_before
        server_cpu = process_tree_cpu_seconds(live.process.pid) - server_before
        print(
            f"  {mode} ({filters} filters): {report.lifecycles_per_second:.1f} lifecycles/s;"
            " CPU used: driver"
            f" {driver_cpu / report.elapsed:.0%} of a core, server"
            f" {server_cpu / report.elapsed:.0%} of a core ="
            f" {server_cpu / max(report.done, 1) * 1e3:.1f} ms per lifecycle;"
            f" calls: {', '.join(f'{c}={len(v)}' for c, v in sorted(report.latencies.items()))}",
            flush=True,
        )
        return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="embedded,redis+postgres")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--long-poll", type=float, default=10)
    parser.add_argument(
        "--filters", default="0", help="prompt filter counts to compare, e.g. 0,300"
    )
    args = parser.parse_args()
    filter_counts = [int(count) for count in args.filters.split(",")]

    print(f"lifecycle throughput — {machine()}")
    print(
        f"clients={args.clients} workers={args.workers} T={args.seconds:g}s "
        f"runs={args.runs} long-poll={args.long_poll:g}s"
    )
    header = f"{'mode':<16}{'lifecycles/s':>14}{'lost':>6}{'dup':>5}{'errors':>8}"
    header += "".join(f"{c + ' p50/p99 ms':>24}" for c in CALLS)
    print(header)
    for count in filter_counts:
        if count:
            re2_us, re_us = filter_check_microseconds(count)
            print(
                f"one prompt checked against {count} filters: {re2_us:.1f} µs"
                f" (Python re: {re_us:.1f} µs, {re_us / re2_us:.0f}x)",
                flush=True,
            )
            record("lifecycle", f"prompt check, {count} filters", round(re2_us, 1), "µs")
    for mode in args.modes.split(","):
        by_count: dict[int, list[LoadReport]] = defaultdict(list)
        for _ in range(args.runs):
            for count in filter_counts:  # interleaved: both see the same machine
                by_count[count].append(one_run(mode, args, count))
        for count in filter_counts:
            label = mode if len(filter_counts) == 1 else f"{mode}, {count} filters"
            summarize(label, by_count[count])


def summarize(mode: str, reports: list[LoadReport]) -> None:
    rates = [r.lifecycles_per_second for r in reports]
    p50: dict[str, list[float]] = defaultdict(list)
    p99: dict[str, list[float]] = defaultdict(list)
    for report in reports:
        for call in CALLS:
            if report.latencies.get(call):
                p50[call].append(report.percentile(call, 50) * 1e3)
                p99[call].append(report.percentile(call, 99) * 1e3)
    row = (
        f"{mode:<16}{median(rates):>14.1f}"
        f"{sum(len(r.lost) for r in reports):>6}"
        f"{sum(len(r.duplicated_images) for r in reports):>5}"
        f"{sum(sum(r.errors.values()) for r in reports):>8}"
    )
    for call in CALLS:
        cell = f"{median(p50[call]):.1f}/{median(p99[call]):.1f}" if p50[call] else "-"
        row += f"{cell:>24}"
    print(row, flush=True)
    target = "≥ 200" if mode == "redis+postgres" else ""
    record("lifecycle", f"{mode} lifecycles/s", round(median(rates), 1), "1/s", target)
    for call in CALLS:
        if p99[call]:
            record("lifecycle", f"{mode} {call} p99", round(median(p99[call]), 1), "ms")
    print(f"  runs: {', '.join(f'{rate:.1f}' for rate in rates)} lifecycles/s")
    errors = sum((r.errors for r in reports), start=type(reports[0].errors)())
    if errors:
        print("  errors: " + ", ".join(f"{k}={v}" for k, v in errors.items()))


if __name__ == "__main__":
    main()
