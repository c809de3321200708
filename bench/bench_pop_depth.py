"""Pop and check latency against queue depth: `POST /generate/pop` and `GET /generate/check`
with 10, 1 000 and 10 000 waiting jobs.

    .venv/bin/python bench/bench_pop_depth.py [--modes embedded,redis+postgres]
                                              [--depths 10,1000,10000] [--pops 300] [--runs 3]

The queue is filled over HTTP (requests of n=20 images, 64×64) to the depth by --requesters
users of different balances (0, 5, 500, 50 000 … kudos: each waits in its own kudos band, so a
pop weighs several queues), then a worker pops --pops jobs one after another; after each timed
pop one untimed image is queued again so the depth stays where it was. Then --pops checks of a
request of the poorest user queued last (its queue position counts every image ahead of it, in
every queue and band). Median over --runs of each depth's p50/p99
(each run on a fresh server). Targets: p99 at 10 000 within 2× of p99 at 10 — neither a pop nor
a queue position may scan the queue.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import httpx
from _common import machine, median, percentile, running_horde
from _record import record

from tests.faults.horde_client import TINY_MODEL

BODY = {
    "prompt": "depth",
    "params": {"width": 64, "height": 64, "steps": 1},
    "models": [TINY_MODEL],
}


def _queue(http: httpx.Client, api: str, key: str, images: int) -> str:
    """Queue `images` images; returns the id of the last request."""
    request_id = ""
    while images > 0:
        n = min(20, images)
        body = {**BODY, "params": {**BODY["params"], "n": n}}
        reply = http.post(f"{api}/generate/async", json=body, headers={"apikey": key})
        if reply.status_code != 202:
            raise RuntimeError(f"queueing failed: {reply.status_code} {reply.text[:200]}")
        request_id = reply.json()["id"]
        images -= n
    return request_id


def one_run(mode: str, depth: int, pops: int, requesters: int) -> tuple[list[float], list[float]]:
    """(pop latencies, check latencies) of one fresh server at this depth."""
    with running_horde(mode) as live:
        # Balances 0, 5, 500, 50 000 …: one kudos band each.
        keys = [
            live.create_user(f"depth-client{i}", kudos=5 * 100 ** (i - 1) if i else 0)
            for i in range(requesters)
        ]
        worker_key = live.create_user("depth-worker", trusted=True)
        pop_body: dict[str, Any] = {
            "name": "depth-worker",
            "models": [TINY_MODEL],
            "max_pixels": 512 * 512,
        }
        latencies: list[float] = []
        checks: list[float] = []
        with httpx.Client(timeout=30) as http:
            # The worker pops once first: it announces its model (a queue of its own).
            http.post(f"{live.api}/generate/pop", json=pop_body, headers={"apikey": worker_key})
            for index, key in enumerate(keys):
                share = depth // len(keys) + (1 if index < depth % len(keys) else 0)
                _queue(http, live.api, key, share)
            # A few untimed pops warm up connections and code paths.
            for index in range(3):
                http.post(f"{live.api}/generate/pop", json=pop_body, headers={"apikey": worker_key})
                _queue(http, live.api, keys[index % len(keys)], 1)
            for index in range(pops):
                started = time.perf_counter()
                reply = http.post(
                    f"{live.api}/generate/pop", json=pop_body, headers={"apikey": worker_key}
                )
                latencies.append(time.perf_counter() - started)
                if reply.status_code != 200 or not reply.json().get("id"):
                    raise RuntimeError(f"pop found no job at depth {depth}: {reply.text[:200]}")
                _queue(http, live.api, keys[index % len(keys)], 1)
            last = _queue(http, live.api, keys[0], 1)
            for _ in range(pops):
                started = time.perf_counter()
                reply = http.get(f"{live.api}/generate/check/{last}")
                checks.append(time.perf_counter() - started)
                if reply.status_code != 200 or reply.json()["queue_position"] < depth - 1:
                    raise RuntimeError(f"check at depth {depth} is wrong: {reply.text[:200]}")
        return latencies, checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="embedded,redis+postgres")
    parser.add_argument("--depths", default="10,1000,10000")
    parser.add_argument("--pops", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requesters", type=int, default=4, help="users in distinct kudos bands")
    args = parser.parse_args()
    depths = [int(d) for d in args.depths.split(",")]

    print(f"pop latency vs queue depth — {machine()}")
    print(f"pops={args.pops} per run, runs={args.runs}, requesters={args.requesters}")
    print(f"{'mode':<16}{'call':<7}{'depth':>8}{'p50 ms':>10}{'p99 ms':>10}{'p99/p99@first':>16}")
    for mode in args.modes.split(","):
        first: dict[str, float] = {}
        last: dict[str, float] = {}
        for depth in depths:
            runs = [one_run(mode, depth, args.pops, args.requesters) for _ in range(args.runs)]
            for index, call in enumerate(("pop", "check")):
                p50 = median([percentile(r[index], 50) * 1e3 for r in runs])
                p99 = median([percentile(r[index], 99) * 1e3 for r in runs])
                first.setdefault(call, p99)
                last[call] = p99
                ratio = p99 / first[call]
                print(
                    f"{mode:<16}{call:<7}{depth:>8}{p50:>10.2f}{p99:>10.2f}{ratio:>16.2f}",
                    flush=True,
                )
                record("pop depth", f"{mode} {call} p99 at {depth}", round(p99, 2), "ms")
        for call, p99 in last.items():
            ratio = round(p99 / first[call], 2)
            figure = f"{mode} {call} p99 ratio {depths[-1]}/{depths[0]}"
            record("pop depth", figure, ratio, "×", "≤ 2")


if __name__ == "__main__":
    main()
