"""The restart and crash fault tests, run again and again on a machine kept busy.

    ./run bench --only faults-stress [--iterations 50]

A run of the fault tests that kill the API (tests/faults/test_restarts.py's SIGKILL test,
tests/faults/test_pop_crash.py) while other processes load every core and the disk: a deadline
that holds only on a quiet machine shows up here as a miss. Each iteration is one pytest run of
those tests; a failing run is a *deadline miss* when its message is a fault test's timeout
("not done in", "condition not met"), otherwise a plain failure. Not part of CI: it takes about
two minutes per iteration on a 2-core machine.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine
from _record import record

ROOT = Path(__file__).resolve().parent.parent
TESTS = [
    "tests/faults/test_restarts.py::test_api_sigkill_and_restart_loses_no_request_nor_running_job",
    "tests/faults/test_pop_crash.py",
]
DEADLINE_MARKERS = ("not done in", "condition not met within")


def _burn_cpu(stop: multiprocessing.synchronize.Event) -> None:
    value = 0
    while not stop.is_set():
        for _ in range(100_000):
            value = (value * 31 + 7) % 1_000_003


def _churn_disk(stop: multiprocessing.synchronize.Event, folder: str) -> None:
    block = os.urandom(4 * 1024 * 1024)
    path = Path(folder) / "churn.bin"
    while not stop.is_set():
        with path.open("wb") as out:
            for _ in range(16):
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        path.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=50)
    args = parser.parse_args()
    stop = multiprocessing.Event()
    with tempfile.TemporaryDirectory(prefix="faults-stress-") as folder:
        loaders = [
            multiprocessing.Process(target=_burn_cpu, args=(stop,), daemon=True)
            for _ in range(os.cpu_count() or 2)
        ]
        loaders.append(
            multiprocessing.Process(target=_churn_disk, args=(stop, folder), daemon=True)
        )
        for loader in loaders:
            loader.start()
        passed = misses = failures = 0
        durations = []
        try:
            for iteration in range(1, args.iterations + 1):
                started = time.monotonic()
                run = subprocess.run(
                    [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *TESTS],
                    cwd=ROOT,
                    env={**os.environ, "CI": "true"},
                    capture_output=True,
                    text=True,
                )
                durations.append(time.monotonic() - started)
                output = run.stdout + run.stderr
                if run.returncode == 0:
                    passed += 1
                    outcome = "passed"
                elif any(marker in output for marker in DEADLINE_MARKERS):
                    misses += 1
                    outcome = "DEADLINE MISS"
                else:
                    failures += 1
                    outcome = "FAILED"
                print(f"iteration {iteration}: {outcome} in {durations[-1]:.0f} s", flush=True)
                if outcome != "passed":
                    print(output[-4000:], flush=True)
        finally:
            stop.set()
            for loader in loaders:
                loader.join(10)
    print(f"\n{machine()}")
    print(
        f"{args.iterations} iterations under load: {passed} passed, {misses} deadline misses,"
        f" {failures} other failures; median {sorted(durations)[len(durations) // 2]:.0f} s each"
    )
    record("faults-stress", "iterations", args.iterations, "runs")
    record("faults-stress", "deadline misses", misses, "runs", "0")
    record("faults-stress", "other failures", failures, "runs", "0")
    return 0 if misses == failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
