"""Every benchmark, one after the other, then one table of their headline figures.

    ./run bench [--quick] [--only NAME[,NAME…]] [--against REV]

`faults-stress` (the crash/restart fault tests under full machine load) runs only when named.

Each benchmark prints its detailed table as it runs; its headline figures are collected through
bench/_record.py and printed together at the end, ready for docs/benchmarks.md. --quick runs
fewer and shorter repetitions (a smoke run, not figures to record). The benchmarks need Redis and
PostgreSQL on 127.0.0.1 (as the tests do) and, for the Krita stall, Krita and Xvfb
(scripts/ensure_services.sh provides all of them).

--against REV checks out REV (any git revision) in a temporary `git worktree` and has the
benchmarks that can compare (those in AGAINST) run its server and the current one alternately
with the same driver, printing current ÷ REV ratios: a regression shows as a ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

BENCH = Path(__file__).resolve().parent

# name → (script, arguments for a full run, arguments for --quick)
BENCHMARKS: dict[str, tuple[str, list[str], list[str]]] = {
    "lifecycle": ("bench_lifecycle.py", [], ["--runs", "1", "--seconds", "3"]),
    "pop-depth": ("bench_pop_depth.py", [], ["--runs", "1", "--depths", "10,1000", "--pops", "50"]),
    "load": ("bench_load.py", [], ["--grid", "4x2", "--seconds", "3"]),
    "worker-overhead": (
        "bench_worker_overhead.py",
        [],
        ["--runs", "2", "--steps", "4", "--rounds", "1", "--jobs", "3"],
    ),
    "cpu-slots": ("bench_cpu_slots.py", [], ["--runs", "1", "--jobs", "1", "--steps", "4"]),
    "pickup": ("bench_pickup.py", [], ["--trials", "5", "--backoff-trials", "2", "--idle", "3"]),
    "plugin-job": ("bench_plugin_job.py", [], ["--runs", "2"]),
    "krita-stall": ("bench_krita_stall.py", [], ["--runs", "1"]),
    "faults-stress": ("bench_faults_stress.py", [], ["--iterations", "2"]),
}
# Run only when named with --only: they take long and load the whole machine on purpose.
OPT_IN = {"faults-stress"}
# Benchmarks that take `--against DIR` (an older checkout to run side by side with this one).
AGAINST = {"lifecycle"}


@contextlib.contextmanager
def checkout(rev: str) -> Iterator[Path]:
    """`rev` checked out (detached) in a temporary git worktree, removed afterwards."""
    root = BENCH.parent
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{rev}^{{commit}}"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if commit.returncode:
        raise SystemExit(f"--against: {rev!r} is not a commit here ({commit.stderr.strip()})")
    with tempfile.TemporaryDirectory(prefix="bench-against-") as tmp:
        path = Path(tmp) / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "--quiet", str(path), commit.stdout.strip()],
            cwd=root,
            check=True,
        )
        try:
            yield path
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=root)


def format_table(rows: list[dict[str, object]]) -> str:
    lines = [f"{'benchmark':<17}{'figure':<60}{'value':>10} {'unit':<9}{'target':<8}"]
    for row in rows:
        value = row["value"]
        shown = f"{value:.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else value
        lines.append(
            f"{row['bench']!s:<17}{row['figure']!s:<60}{shown!s:>10} {row['unit']!s:<9}"
            f"{row['target']!s:<8}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: short, few repeats")
    parser.add_argument("--only", default="", help=f"comma-separated from {', '.join(BENCHMARKS)}")
    parser.add_argument("--against", metavar="REV", help="compare with this older commit")
    args = parser.parse_args()
    chosen = [name for name in args.only.split(",") if name] or [
        name for name in BENCHMARKS if name not in OPT_IN
    ]
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")

    if args.against:
        without = sorted(set(chosen) - AGAINST)
        if without:
            parser.error(
                f"--against works with {', '.join(sorted(AGAINST))}, not {', '.join(without)}"
            )
    with checkout(args.against) if args.against else contextlib.nullcontext() as old:
        return run(chosen, args.quick, old)


def run(chosen: list[str], smoke: bool, against: Path | None) -> int:
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-results-") as tmp:
        results = Path(tmp) / "results.jsonl"
        env = {**os.environ, "BENCH_RESULTS": str(results)}
        for name in chosen:
            script, full, quick = BENCHMARKS[name]
            command = [sys.executable, str(BENCH / script), *(quick if smoke else full)]
            if against is not None:
                command += ["--against", str(against)]
            print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
            started = time.monotonic()
            code = subprocess.run(command, env=env, cwd=BENCH.parent).returncode
            print(f"=== {name}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
            if code:
                failed.append(name)
        lines = results.read_text().splitlines() if results.exists() else []
        rows = [json.loads(line) for line in lines]
    print("\n" + format_table(rows))
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
