"""The artist's path through the real Krita, shared by the end-to-end test and the stall bench.

`play_artist` starts a horde API process (either storage mode) and a worker on the tiny model,
then runs Krita under Xvfb with the plug-in from its zip and the driver plug-in playing the
scenario: no selection → txt2img, a rectangle → img2img, an ellipse → inpainting.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.e2e.krita_session import KritaRun, run_krita
from tests.faults.proxy import FaultProxy, fault_proxy
from tests.helpers.live_horde import LiveHorde, start_horde
from tests.helpers.live_worker import LiveWorker, start_worker

ROOT = Path(__file__).resolve().parents[2]
MODEL = "krita-horde-tiny"
SEED = 4242
DOC = 512
RECT = (64, 96, 256, 192)  # x, y, w, h of the img2img selection
ELLIPSE = (200, 180, 240, 160)  # bounding box of the inpainting selection

JOBS = [
    {"name": "txt2img", "selection": None, "settings": {"mode": "txt2img"}},
    {
        "name": "img2img",
        "selection": {"kind": "rect", "rect": list(RECT)},
        "settings": {"mode": "auto"},
    },
    {
        "name": "inpainting",
        "selection": {"kind": "ellipse", "rect": list(ELLIPSE)},
        "settings": {"mode": "auto"},
    },
]


def build_plugin_zip(out: Path) -> Path:
    """The plug-in zip exactly as artists get it (scripts/build_plugin_zip.py)."""
    subprocess.run(
        [sys.executable, str(ROOT / "scripts/build_plugin_zip.py"), "--out", str(out)], check=True
    )
    (archive,) = out.glob("krita_horde-*.zip")
    return archive


@contextmanager
def flapping_link(horde_port: int, stalled_s: float, open_s: float) -> Iterator[FaultProxy]:
    """A slow, hanging horde as the plug-in sees it: a proxy in front of the API that holds all
    traffic for `stalled_s`, lets it through for `open_s`, and again, until the block ends."""
    done = threading.Event()

    def flap(proxy: FaultProxy) -> None:
        # A fault schedule, not a wait for a condition: the link's rhythm is the test input.
        while not done.is_set():
            proxy.stall()
            if done.wait(stalled_s):
                break
            proxy.pass_through()
            done.wait(open_s)
        proxy.pass_through()

    with fault_proxy(horde_port) as proxy:
        flapper = threading.Thread(target=flap, args=(proxy,), name="flapping-link", daemon=True)
        flapper.start()
        try:
            yield proxy
        finally:
            done.set()
            flapper.join(timeout=10)


@dataclass
class ArtistRun:
    krita: KritaRun
    horde: LiveHorde
    worker: LiveWorker
    workers: list[dict[str, Any]]  # GET /workers after the run


@contextmanager
def play_artist(
    folder: Path,
    plugin_zip: Path,
    *,
    jobs: list[dict[str, Any]] = JOBS,
    slow_link: tuple[float, float] | None = None,
    **horde_options: Any,
) -> Iterator[ArtistRun]:
    """Run `jobs` (by default the three modes); everything (report, Krita's output, both server
    logs) stays in `folder`. `slow_link=(stalled_s, open_s)` puts a flapping link between the
    plug-in and the horde (the worker talks to the horde directly). `horde_options` go to
    start_horde (redis_url, redis_prefix, database_url)."""
    for part in ("horde", "worker"):
        (folder / part).mkdir(parents=True, exist_ok=True)
    with start_horde(folder / "horde", **horde_options) as horde:
        apikey = horde.create_user("e2e-artist", trusted=True)
        link = flapping_link(horde.port, *slow_link) if slow_link else nullcontext(None)
        with (
            start_worker(folder / "worker", horde.url, apikey, name="e2e-worker") as worker,
            link as proxy,
        ):
            scenario = {
                "settings": {
                    "url": proxy.url if proxy else horde.url,
                    "apikey": apikey,
                    "model": MODEL,
                    "prompt": "a lighthouse on a cliff",
                    # Every result straight into a layer (else it waits in the history).
                    "insert_all": True,
                    "negative": "blurry",
                    "steps": 6,
                    "seed": str(SEED),
                    "n": 1,
                    "denoise": 0.7,
                    "cfg": 7.0,
                    "sampler": "k_euler",
                    "min_size": 256,
                    "max_size": 512,
                },
                "jobs": jobs,
                "job_timeout": 240,
            }
            krita = run_krita(plugin_zip, folder / "krita", scenario)
            workers = requests.get(f"{horde.api}/workers", timeout=10).json()
            yield ArtistRun(krita, horde, worker, workers)
