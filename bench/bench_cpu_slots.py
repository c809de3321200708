"""CPU threads per slot: several jobs at once on the CPU, with and without sharing torch's threads.

    .venv/bin/python bench/bench_cpu_slots.py [--runs 3] [--slots 2] [--jobs 6] [--steps 20]

A worker with `threads` = S generates S jobs at once, each on its own slot thread with its own
pipeline (`from_pipe`, shared weights). Each thread that runs torch gets an OpenMP team of
torch's thread count, so S slots want S × that many threads; `share_cpu_threads`
(worker/device.py) gives each slot its share instead. Three variants, each in a fresh process
(torch's thread count and OpenMP teams are per process), alternated run by run: one slot (the
reference), S slots with every torch thread each (as before), S slots sharing them. Figures:
seconds per job over all slots, medians of the runs, and the median of the per-run ratios of
the two S-slot variants. Tiny model, 256², CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _record import record  # noqa: E402

from tests.helpers.live_worker import test_cache_dir  # noqa: E402

MODEL = "krita-horde-tiny"
# name → (slots, 0 = --slots; whether the slots share torch's threads)
VARIANTS = {
    "one slot": (1, False),
    "slots, all threads each": (0, False),
    "slots, shared": (0, True),
}


def child(slots: int, share: bool, jobs: int, steps: int) -> float:
    """Seconds per job of `slots` slot threads making `jobs` jobs each (in this process)."""
    import torch
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import logging as diffusers_logging

    from horde_worker.config import load_settings
    from horde_worker.device import resolve_placement, share_cpu_threads
    from horde_worker.models import ModelRegistry

    diffusers_logging.disable_progress_bar()
    diffusers_logging.set_verbosity_error()
    placement = resolve_placement("cpu", "fp32")
    if share:
        share_cpu_threads(placement, slots)
    cache = test_cache_dir()
    settings = load_settings(models={MODEL: "tiny"}, cache_dir=cache, device="cpu")
    registry = ModelRegistry(settings, placement)
    registry.load_all()
    loaded = registry.get(MODEL)
    assert loaded is not None

    def slot(count: int) -> None:
        pipeline = StableDiffusionPipeline.from_pipe(loaded.pipeline)
        for index in range(count):
            pipeline(
                prompt="a lighthouse at dusk",
                width=256,
                height=256,
                num_inference_steps=steps,
                generator=torch.Generator("cpu").manual_seed(index),
            )

    def on_threads(count: int) -> None:
        # Never on the main thread: its OpenMP team would outlive the call (see
        # bench_worker_overhead.py), as the worker's slots are threads too.
        threads = [threading.Thread(target=slot, args=(count,)) for _ in range(slots)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    on_threads(1)
    started = time.perf_counter()
    on_threads(jobs)
    return (time.perf_counter() - started) / (slots * jobs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=6, help="jobs per slot")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--child", nargs=2, metavar=("SLOTS", "SHARE"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        slots, share = int(arguments.child[0]), arguments.child[1] == "1"
        print(child(slots, share, arguments.jobs, arguments.steps))
        return 0
    seconds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(arguments.runs):
        for name, (slots, share) in VARIANTS.items():
            command = [sys.executable, __file__, "--jobs", str(arguments.jobs)]
            command += ["--steps", str(arguments.steps)]
            command += ["--child", str(slots or arguments.slots), "1" if share else "0"]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            seconds[name].append(float(done.stdout.strip().splitlines()[-1]))
    print(
        f"CPU threads per slot, tiny model, 256x256, {arguments.steps} steps, {os.cpu_count()}"
        f" CPUs, {arguments.slots} slots x {arguments.jobs} jobs, {arguments.runs} runs"
    )
    reference = statistics.median(seconds["one slot"])
    for name, values in seconds.items():
        median = statistics.median(values)
        runs = ", ".join(f"{value:.3f}" for value in values)
        print(f"  {name:<26} {median:.3f} s/job  (x{reference / median:.2f} jobs/s)  runs: {runs}")
    # Per run pair (the two ran one after the other): steadier than a ratio of medians where
    # the speed of a whole process varies from one process to the next.
    pairs = [
        unshared / shared
        for unshared, shared in zip(
            seconds["slots, all threads each"], seconds["slots, shared"], strict=True
        )
    ]
    ratio = statistics.median(pairs)
    print(
        f"  throughput, shared / all threads each: {ratio:.2f} (median of the run pairs: "
        + ", ".join(f"{pair:.2f}" for pair in pairs)
        + ")"
    )
    record("cpu-slots", "throughput, shared ÷ all threads each", round(ratio, 2), "x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
