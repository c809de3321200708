"""Load grid: N clients × M simulated workers for T seconds — throughput and, above all, that no
request is lost or duplicated and every one reaches a final state.

    .venv/bin/python bench/bench_load.py [--mode redis+postgres] [--grid 4x2,16x8,64x16]
                                         [--seconds 10] [--n 2] [--long-poll 10]

Each row is one run on a fresh server: requests of --n images, 64×64; `jobs/s` counts images
submitted per second. `lost` = queued requests not final within the drain time; `dup` =
requests holding one job or image twice; `wrong n` = requests finished with the wrong count.
"""

from __future__ import annotations

import argparse
import asyncio

from _common import machine, running_horde
from _record import record

from tests.faults.load import run_load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", default="redis+postgres")
    parser.add_argument("--grid", default="4x2,16x8,64x16")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--n", type=int, default=2)
    parser.add_argument("--long-poll", type=float, default=10)
    args = parser.parse_args()

    print(f"load grid ({args.mode}) — {machine()}")
    print(
        f"{'clients':>8}{'workers':>8}{'queued':>8}{'done':>7}{'lost':>6}{'dup':>5}{'wrong n':>8}"
        f"{'errors':>8}{'req/s':>8}{'jobs/s':>8}{'pop p99':>9}{'submit p99':>11}"
    )
    for cell in args.grid.split(","):
        clients, workers = (int(x) for x in cell.split("x"))
        with running_horde(args.mode) as live:
            client_keys = [live.create_user(f"load-client-{i}") for i in range(8)]
            worker_key = live.create_user("load-workers", trusted=True)
            report = asyncio.run(
                run_load(
                    live.api,
                    client_keys,
                    worker_key,
                    clients=clients,
                    workers=workers,
                    seconds=args.seconds,
                    n_per_request=args.n,
                    long_poll=args.long_poll,
                )
            )
        print(
            f"{clients:>8}{workers:>8}{report.queued:>8}{report.done:>7}{len(report.lost):>6}"
            f"{len(report.duplicated_images):>5}{len(report.wrong_image_count):>8}"
            f"{sum(report.errors.values()):>8}{report.lifecycles_per_second:>8.1f}"
            f"{report.submitted / report.elapsed:>8.1f}"
            f"{report.percentile('pop', 99) * 1e3:>9.1f}"
            f"{report.percentile('submit', 99) * 1e3:>11.1f}",
            flush=True,
        )
        cell_name = f"{args.mode} {clients}x{workers}"
        record("load", f"{cell_name} req/s", round(report.lifecycles_per_second, 1), "1/s")
        lost = len(report.lost) + len(report.duplicated_images) + len(report.wrong_image_count)
        record("load", f"{cell_name} lost+dup+wrong n", lost, "requests", "0")
        if report.errors:
            print("  errors: " + ", ".join(f"{k}={v}" for k, v in report.errors.items()))


if __name__ == "__main__":
    main()
