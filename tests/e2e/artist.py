"""The artist's path through the real Krita, shared by the end-to-end test and the stall bench.

`play_artist` starts a horde API process (either storage mode) and a worker on the tiny model,
then runs Krita under Xvfb with the plug-in from its zip and the driver plug-in playing the
scenario: no selection → txt2img, a rectangle → img2img, an ellipse → inpainting.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.e2e.krita_session import KritaRun, run_krita
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


@dataclass
class ArtistRun:
    krita: KritaRun
    horde: LiveHorde
    worker: LiveWorker
    workers: list[dict[str, Any]]  # GET /workers after the run


@contextmanager
def play_artist(folder: Path, plugin_zip: Path, **horde_options: Any) -> Iterator[ArtistRun]:
    """Run the three jobs; everything (report, Krita's output, both server logs) stays in
    `folder`. `horde_options` go to start_horde (redis_url, redis_prefix, database_url)."""
    for part in ("horde", "worker"):
        (folder / part).mkdir(parents=True, exist_ok=True)
    with start_horde(folder / "horde", **horde_options) as horde:
        apikey = horde.create_user("e2e-artist", trusted=True)
        with start_worker(folder / "worker", horde.url, apikey, name="e2e-worker") as worker:
            scenario = {
                "settings": {
                    "url": horde.url,
                    "apikey": apikey,
                    "model": MODEL,
                    "prompt": "a lighthouse on a cliff",
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
                "jobs": JOBS,
                "job_timeout": 240,
            }
            krita = run_krita(plugin_zip, folder / "krita", scenario)
            workers = requests.get(f"{horde.api}/workers", timeout=10).json()
            yield ArtistRun(krita, horde, worker, workers)
