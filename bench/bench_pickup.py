"""Pickup latency: how soon an idle worker gets a job queued on the horde.

    .venv/bin/python bench/bench_pickup.py [--trials 20] [--backoff-trials 6] [--idle 6]

Against a live `horde-api serve` (tests/helpers/live_horde.py), a worker's own popper
(worker/popper.py) waits for a job; the benchmark queues one and times from just before the
`POST /generate/async` to the moment the popper returns the job. Two ways of waiting, side by
side in one run:

- long-poll (our extension): the pop is held on the horde and woken through Redis pub/sub;
- back-off (what a horde without long-poll gets): empty pops `idle_initial_delay` 0.5 s doubling
  up to `idle_max_delay` 4 s (the defaults), the job queued after `--idle` seconds of quiet.

It also counts the pops each way sends per pickup (what the horde must answer), and times the
`POST /generate/async` round trip itself, which the pickup time includes.
"""

from __future__ import annotations

import argparse
import base64
import io
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _record import record  # noqa: E402

MODEL = "krita-horde-tiny"


def webp_b64() -> str:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 64), "gray").save(out, "WEBP")
    return base64.b64encode(out.getvalue()).decode()


class CountingClient:
    """The worker's HordeClient, counting its pops."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.pops = 0

    def pop(self, *args: Any, **kwargs: Any) -> Any:
        self.pops += 1
        return self.inner.pop(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20, help="long-poll pickups")
    parser.add_argument("--backoff-trials", type=int, default=6, help="back-off pickups")
    parser.add_argument("--idle", type=float, default=6.0, help="quiet seconds before a job")
    arguments = parser.parse_args()

    import requests

    from horde_protocol import SubmitRequest
    from horde_worker.answer import Answerer
    from horde_worker.config import load_settings
    from horde_worker.horde_client import HordeClient
    from horde_worker.job import Capabilities
    from horde_worker.popper import LogGate, Popper
    from horde_worker.retry import Retrier
    from horde_worker.shutdown import Shutdown
    from horde_worker.stats import WorkerStats
    from tests.helpers.live_horde import start_horde

    image = webp_b64()
    with tempfile.TemporaryDirectory() as scratch, start_horde(Path(scratch)) as live:
        worker_key = live.create_user("bench-worker", trusted=True)
        session = requests.Session()
        session.headers["apikey"] = live.create_user("bench-client")
        body = {
            "prompt": "a lighthouse",
            "models": [MODEL],
            "r2": False,
            "params": {"width": 64, "height": 64, "steps": 1, "n": 1},
        }

        def popper(long_poll: float) -> tuple[Popper, CountingClient]:
            settings = load_settings(
                horde_url=live.url,
                api_key=worker_key,
                name="bench-pickup",
                models={MODEL: "tiny"},
                pop_long_poll_seconds=long_poll,
            )
            client = CountingClient(HordeClient(live.url, worker_key))
            shutdown = Shutdown()
            retry = Retrier(settings, shutdown)
            answerer = Answerer(settings, client, shutdown, WorkerStats(), retry)  # type: ignore[arg-type]
            capabilities = Capabilities((MODEL,), settings.max_pixels, True, True)
            made = Popper(
                settings,
                capabilities,
                client,  # type: ignore[arg-type]
                shutdown,
                retry,
                answerer,
                LogGate(60),
            )
            return made, client

        enqueue_times: list[float] = []

        def pickup(pop: Popper, quiet: float) -> float:
            """Seconds from queueing a job (after `quiet` s of an idle worker) to its pop."""
            got: dict[str, float] = {}
            reply_box: list[Any] = []

            def wait() -> None:
                reply_box.append(pop.next_job())
                got["at"] = time.perf_counter()

            waiter = threading.Thread(target=wait, daemon=True)
            waiter.start()
            time.sleep(quiet)  # the worker idles: held pops, or empty pops with back-off
            queued = time.perf_counter()
            session.post(f"{live.api}/generate/async", json=body, timeout=30).raise_for_status()
            enqueue_times.append(time.perf_counter() - queued)
            waiter.join(60)
            [reply] = reply_box
            # Answer it, so the next trial finds an empty queue.
            pop.client.submit(SubmitRequest(id=reply.id, generation=image, seed=0))
            return got["at"] - queued

        def trials(
            pop: Popper, client: CountingClient, count: int, quiet: float
        ) -> tuple[list[float], float]:
            """Pickup seconds of `count` trials, and the pops sent per pickup."""
            client.pops = 0
            times = [pickup(pop, quiet) for _ in range(count)]
            return times, client.pops / count

        results: dict[str, tuple[list[float], float]] = {}
        held, held_client = popper(long_poll=20.0)
        results["long-poll"] = trials(held, held_client, arguments.trials, 0.5)
        polled, polled_client = popper(long_poll=0.0)
        results["back-off"] = trials(
            polled, polled_client, arguments.backoff_trials, arguments.idle
        )

    print("\npickup latency of an idle worker, live horde on loopback, ms")
    print(f"  {'':12}{'median':>9}{'p90':>9}{'max':>9}{'pops/pickup':>13}")
    for label, (times, per_pickup) in results.items():
        ms = sorted(t * 1000 for t in times)
        p90 = ms[min(len(ms) - 1, int(0.9 * len(ms)))]
        print(
            f"  {label:12}{statistics.median(ms):>9.1f}{p90:>9.1f}{ms[-1]:>9.1f}{per_pickup:>13.1f}"
        )
        target = "≤ 50" if label == "long-poll" else ""
        record("pickup latency", f"{label} median", round(statistics.median(ms), 1), "ms", target)
    post_ms = statistics.median(enqueue_times) * 1000
    print(f"  (included: the POST /generate/async round trip, median {post_ms:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
