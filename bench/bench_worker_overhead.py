"""Worker overhead: a whole horde job vs the bare diffusers call, and memory across modes.

    .venv/bin/python bench/bench_worker_overhead.py [--runs 7] [--size 256] [--steps 20]
                                                    [--horde auto|live|stub]
                                                    [--rounds 5] [--jobs 6]

Per job, the worker does pop → decode/check → generate → WebP encode → submit (plus progress
reports from a side thread). The bare call is `pipeline(...)` with the same model, size, steps,
sampler and seed, returning a PIL image. Runs alternate (bare, worker, bare, …) so load from
other processes on a shared machine hits both sides alike; the figure is the ratio of medians.
`--horde live` uses a real `horde-api serve` (via tests/helpers/live_horde.py); `stub` the
loopback stub of the worker tests; `auto` the live horde when it is importable.

Throughput (the worker never idles, worker/pipeline.py): each round queues `--jobs` jobs and
times the real WorkerLoop serving them back to back (one slot: pop-ahead and the side-thread
submit on, then off), against `--jobs` bare calls back to back; rounds alternate the three, and
the figures are medians of the per-round seconds per job. Long-poll is off there (the jobs
wait before the loop starts; a held pop of a stopped loop would take the next round's job).

Memory: resident set size after loading, after a txt2img job, then after img2img and
inpainting jobs built with `from_pipe` on the same weights (no second copy of the model).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _record import record  # noqa: E402

from tests.helpers.live_worker import test_cache_dir  # noqa: E402

MODEL = "krita-horde-tiny"
T = TypeVar("T")


def on_fresh_thread(action: Callable[[], T]) -> T:
    """`action()` on a thread of its own. libgomp keeps a thread's OpenMP team for as long as
    the thread lives, and once teams hold more threads than the machine has cores it stops
    spinning between parallel regions: torch on the main thread would slow down every later
    generation on the worker's slot threads (measured: 0.52 → 1.0 s per job here). So no torch
    work of the benchmark runs on the main thread, as none runs there in the worker."""
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(action())
        except BaseException as exc:  # re-raised on the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="bench-torch")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def horde(kind: str, tmp: Path) -> Iterator[tuple[str, Any, str]]:
    """(base url, object that queues a job, worker api key)."""
    if kind in ("auto", "live"):
        try:
            from tests.helpers.live_horde import start_horde
        except ImportError:
            if kind == "live":
                raise
        else:
            with start_horde(tmp) as live:
                worker_key = live.create_user("bench-worker", trusted=True)
                client_key = live.create_user("bench-client")
                yield live.url, LiveQueue(live.api, client_key), worker_key
            return
    from tests.worker.stub_horde import running_stub

    with running_stub() as stub:
        yield stub.url, StubQueue(stub), "bench-key-0123456789"


class StubQueue:
    label = "stub horde (loopback HTTP)"

    def __init__(self, stub: Any) -> None:
        self.stub = stub

    def add(self, size: int, steps: int, seed: int) -> None:
        self.stub.add_job(
            width=size, height=size, steps=steps, seed=str(seed), sampler_name="k_euler_a"
        )


class LiveQueue:
    label = "live horde-api serve"

    def __init__(self, api: str, key: str) -> None:
        import requests

        self.api = api
        self.session = requests.Session()
        self.session.headers["apikey"] = key

    def add(self, size: int, steps: int, seed: int) -> None:
        body = {
            "prompt": "a lighthouse at dusk###blurry",
            "models": [MODEL],
            "r2": False,
            "params": {
                "width": size,
                "height": size,
                "steps": steps,
                "seed": str(seed),
                "sampler_name": "k_euler_a",
                "n": 1,
            },
        }
        reply = self.session.post(f"{self.api}/generate/async", json=body, timeout=30)
        reply.raise_for_status()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--horde", choices=("auto", "live", "stub"), default="auto")
    parser.add_argument("--rounds", type=int, default=5, help="throughput rounds")
    parser.add_argument("--jobs", type=int, default=6, help="back-to-back jobs per round")
    arguments = parser.parse_args()

    import torch
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()
    diffusers_logging.set_verbosity_error()

    from horde_worker.config import load_settings
    from horde_worker.device import resolve_placement
    from horde_worker.generate import generate
    from horde_worker.horde_client import HordeClient
    from horde_worker.job import Capabilities, job_from_pop
    from horde_worker.loop import WorkerLoop
    from horde_worker.models import ModelRegistry
    from horde_worker.samplers import make_scheduler

    cache = test_cache_dir()
    rss_start = rss_mib()
    with (
        tempfile.TemporaryDirectory() as scratch,
        horde(arguments.horde, Path(scratch)) as (
            url,
            queue,
            key,
        ),
    ):
        settings = load_settings(
            horde_url=url,
            api_key=key,
            name="bench-worker",
            models={MODEL: "tiny"},
            cache_dir=cache,
            device="cpu",
            idle_initial_delay=0.05,
            idle_max_delay=0.1,
        )
        registry = ModelRegistry(settings, resolve_placement("cpu", "fp32"))
        on_fresh_thread(registry.load_all)
        rss_loaded = rss_mib()
        model = registry.get(MODEL)
        assert model is not None
        client = HordeClient(url, key)
        loop = WorkerLoop(settings, registry, client)
        bare_pipe = model.pipeline
        bare_pipe.scheduler = make_scheduler("k_euler_a", False, bare_pipe.scheduler.config)

        def bare() -> float:
            started = time.perf_counter()
            bare_pipe(
                prompt="a lighthouse at dusk",
                negative_prompt="blurry",
                width=arguments.size,
                height=arguments.size,
                num_inference_steps=arguments.steps,
                guidance_scale=7.0,
                generator=torch.Generator("cpu").manual_seed(1),
            ).images[0]
            return time.perf_counter() - started

        def worker_job(seed: int) -> float:
            queue.add(arguments.size, arguments.steps, seed)
            started = time.perf_counter()
            while True:
                reply = client.pop(loop.popper().build_request())
                if reply.id is not None:
                    break
            state = loop.process(reply)
            elapsed = time.perf_counter() - started
            if state != "ok":
                raise RuntimeError(f"bench job ended {state}")
            return elapsed

        def back_to_back(seed: int, pop_ahead: bool) -> float:
            """Seconds per job of the real loop serving `--jobs` queued jobs in a row."""
            served = WorkerLoop(
                settings.model_copy(update={"pop_ahead": pop_ahead, "pop_long_poll_seconds": 0}),
                registry,
                client,
            )
            for index in range(arguments.jobs):
                queue.add(arguments.size, arguments.steps, seed + index)
            runner = threading.Thread(target=served.run, daemon=True)
            started = time.perf_counter()
            runner.start()
            stats = served.stats
            while stats.jobs_ok + stats.jobs_faulted + stats.jobs_undelivered < arguments.jobs:
                time.sleep(0.002)
            elapsed = time.perf_counter() - started
            served.shutdown.request()
            runner.join(60)
            if stats.jobs_ok != arguments.jobs:
                raise RuntimeError(f"back-to-back round: {stats.summary()}")
            return elapsed / arguments.jobs

        def bare_back_to_back() -> float:
            return sum(bare() for _ in range(arguments.jobs)) / arguments.jobs

        for warm in range(2):
            on_fresh_thread(bare)
            on_fresh_thread(lambda warm=warm: worker_job(warm))
        bare_times, worker_times = [], []
        for run in range(arguments.runs):
            bare_times.append(on_fresh_thread(bare))
            worker_times.append(on_fresh_thread(lambda run=run: worker_job(100 + run)))
        rounds: dict[str, list[float]] = {"bare": [], "pipelined": [], "sequential": []}
        for index in range(arguments.rounds):
            seed = 1000 + 100 * index
            rounds["bare"].append(on_fresh_thread(bare_back_to_back))
            rounds["pipelined"].append(back_to_back(seed, pop_ahead=True))
            rounds["sequential"].append(back_to_back(seed + 50, pop_ahead=False))

        # Memory across modes (txt2img warmed above).
        from horde_protocol import PopPayload, PopReply
        from tests.worker.images_util import box_mask, encode, striped

        capabilities = Capabilities((MODEL,), settings.max_pixels, True, True)
        size = arguments.size
        payload = PopPayload(
            prompt="x",
            ddim_steps=arguments.steps,
            seed="1",
            sampler_name="k_euler_a",
            cfg_scale=7.0,
            width=size,
            height=size,
        )
        source = encode(striped(size, size))
        memory = [("after loading", rss_loaded)]
        for label, extra in (
            ("txt2img", {}),
            ("img2img", {"source_image": source, "source_processing": "img2img"}),
            (
                "inpainting",
                {
                    "source_image": source,
                    "source_processing": "inpainting",
                    "source_mask": encode(box_mask(size, size)),
                },
            ),
            ("txt2img again", {}),
            ("img2img again", {"source_image": source, "source_processing": "img2img"}),
        ):
            job = job_from_pop(
                PopReply(id="m", model=MODEL, payload=payload, **extra), capabilities
            )
            on_fresh_thread(lambda job=job: generate(job, model))
            memory.append((f"after {label}", rss_mib()))

        from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting

        weights_mib = (
            sum(
                parameter.numel() * parameter.element_size()
                for component in (
                    model.pipeline.unet,
                    model.pipeline.vae,
                    model.pipeline.text_encoder,
                )
                for parameter in component.parameters()
            )
            / 2**20
        )
        # Structural check: the task pipelines hold the very same module objects.
        shared = all(
            getattr(factory.from_pipe(model.pipeline), name) is getattr(model.pipeline, name)
            for factory in (AutoPipelineForImage2Image, AutoPipelineForInpainting)
            for name in ("unet", "vae", "text_encoder")
        )

    bare_median = statistics.median(bare_times)
    worker_median = statistics.median(worker_times)
    print(
        f"\nworker overhead, tiny model, {size}x{size}, {arguments.steps} steps, CPU,"
        f" {arguments.runs} runs, {queue.label}"
    )
    print(f"{'':28}{'median s':>10}{'min s':>9}{'max s':>9}")
    print(
        f"{'bare diffusers call':28}{bare_median:>10.3f}{min(bare_times):>9.3f}"
        f"{max(bare_times):>9.3f}"
    )
    print(
        f"{'worker pop→submit':28}{worker_median:>10.3f}{min(worker_times):>9.3f}"
        f"{max(worker_times):>9.3f}"
    )
    ratio = worker_median / bare_median
    print(f"{'ratio (worker / bare)':28}{ratio:>10.3f}   target <= 1.05")
    record("worker overhead", "bare diffusers call", round(bare_median, 3), "s")
    record("worker overhead", "worker pop→submit", round(worker_median, 3), "s")
    record("worker overhead", "ratio worker / bare", round(ratio, 3), "×", "≤ 1.05")
    print_throughput(rounds, arguments.jobs)
    warm = memory[1][1]
    print(f"\nresident memory, MiB (process start {rss_start:.0f}; weights {weights_mib:.1f})")
    print(f"  {'':24}{'RSS':>8}{'vs warm txt2img':>17}")
    for label, value in memory:
        print(f"  {label:24}{value:>8.0f}{value - warm:>+17.0f}")
    record("worker overhead", "RSS growth over the mode jobs", round(memory[-1][1] - warm), "MiB")
    print(f"  img2img/inpainting share the loaded UNet, VAE, text encoder: {shared}")
    return 0


def print_throughput(rounds: dict[str, list[float]], jobs: int) -> None:
    medians = {side: statistics.median(times) for side, times in rounds.items()}
    print(f"\nback to back, {len(rounds['bare'])} rounds of {jobs} jobs, s per job (jobs/s)")
    for side, label in (
        ("bare", "bare calls in a row"),
        ("pipelined", "worker, pop-ahead on"),
        ("sequential", "worker, pop-ahead off"),
    ):
        times = rounds[side]
        print(
            f"  {label:24}{medians[side]:>8.3f} ({1 / medians[side]:.3f})"
            f"   min {min(times):.3f} max {max(times):.3f}"
        )
    for side in ("pipelined", "sequential"):
        # Throughput ratio: jobs/s of the worker over jobs/s of the bare calls.
        ratio = medians["bare"] / medians[side]
        target = "≥ 0.98" if side == "pipelined" else ""
        print(f"  throughput {side} / bare: {ratio:.3f}  {target}")
        record("worker throughput", f"{side} / bare", round(ratio, 3), "×", target)


if __name__ == "__main__":
    sys.exit(main())
