"""The worker against the real horde API process (`horde-api serve` on 127.0.0.1), end to end:
a client queues txt2img, img2img and inpainting requests, the worker serves them, the client
reads the results back."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from tests.conftest import require
from tests.worker.conftest import RunningLoop
from tests.worker.images_util import box_mask, encode, striped

try:
    from tests.helpers.live_horde import start_horde
except ImportError:  # the horde API is built in parallel; until then these tests skip
    start_horde = None  # type: ignore[assignment]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def horde(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One horde process for the module (each test queues its own requests)."""
    require(start_horde is not None, "tests/helpers/live_horde.py (the horde API) is missing")
    assert start_horde is not None
    with start_horde(tmp_path_factory.mktemp("horde")) as live:
        live.worker_key = live.create_user("volunteer", trusted=True)
        live.client_key = live.create_user("artist", kudos=10_000)  # long jobs: kudos up front
        yield live


def _queue(live: Any, key: str, **body: Any) -> str:
    request = {"prompt": "a lighthouse###fog", "models": ["krita-horde-tiny"], "r2": False}
    request.update(body)
    reply = requests.post(
        f"{live.api}/generate/async", json=request, headers={"apikey": key}, timeout=30
    )
    assert reply.status_code == 202, reply.text
    return reply.json()["id"]


def _wait_done(live: Any, key: str, request_id: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        reply = requests.get(
            f"{live.api}/generate/status/{request_id}", headers={"apikey": key}, timeout=30
        )
        reply.raise_for_status()
        status = reply.json()
        if status["done"] or status["faulted"]:
            return status
        assert time.monotonic() < deadline, f"request {request_id} not done: {status}"
        time.sleep(0.1)


def _image(img: str) -> Image.Image:
    data = (
        requests.get(img, timeout=30).content if img.startswith("http") else base64.b64decode(img)
    )
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_worker_serves_every_mode_from_the_real_horde(
    horde: Any, start_loop: Callable[..., RunningLoop]
) -> None:
    worker_key, client_key = horde.worker_key, horde.client_key
    source = encode(striped(128, 64))
    params = {"width": 128, "height": 64, "steps": 4, "seed": "77", "sampler_name": "k_euler"}
    requests_by_mode = {
        "txt2img": _queue(horde, client_key, params=params),
        "img2img": _queue(
            horde,
            client_key,
            params={**params, "denoising_strength": 0.6},
            source_image=source,
            source_processing="img2img",
        ),
        "inpainting": _queue(
            horde,
            client_key,
            params=params,
            source_image=source,
            source_processing="inpainting",
            source_mask=encode(box_mask(128, 64)),
        ),
    }
    running = start_loop(horde.url, api_key=worker_key, name="live-test-worker")
    for mode, request_id in requests_by_mode.items():
        status = _wait_done(horde, client_key, request_id)
        assert status["done"] and not status["faulted"], (mode, status)
        [generation] = status["generations"]
        assert generation["seed"] == "77" and generation["worker_name"] == "live-test-worker"
        image = _image(generation["img"])
        assert (image.format, image.size) == ("WEBP", (128, 64)), mode
    running.stop()
    assert running.loop.stats.jobs_ok == 3


def _check(live: Any, key: str, request_id: str) -> dict[str, Any]:
    reply = requests.get(f"{live.api}/generate/check/{request_id}", headers={"apikey": key},
                         timeout=30)  # fmt: skip
    reply.raise_for_status()
    return reply.json()


def _wait_running(live: Any, key: str, request_id: str, timeout: float = 90) -> None:
    """Until the worker has reported progress on the request (it is mid-generation)."""
    deadline = time.monotonic() + timeout
    while not (_check(live, key, request_id).get("progress") or 0) > 0:
        assert time.monotonic() < deadline, "the worker never reported progress"
        time.sleep(0.1)


def test_cancel_on_the_horde_stops_the_running_job(
    horde: Any, start_loop: Callable[..., RunningLoop]
) -> None:
    worker_key, client_key = horde.worker_key, horde.client_key
    params = {"width": 128, "height": 128, "steps": 400, "sampler_name": "k_euler"}
    request_id = _queue(horde, client_key, params=params)
    running = start_loop(horde.url, api_key=worker_key)
    _wait_running(horde, client_key, request_id)
    # The worker's latent previews reach the artist while the job runs.
    deadline = time.monotonic() + 60
    while (preview := requests.get(f"{horde.api}/generate/preview/{request_id}",
                                   timeout=30)).status_code != 200:  # fmt: skip
        assert time.monotonic() < deadline, preview.text
        time.sleep(0.1)
    assert Image.open(io.BytesIO(preview.content)).format == "WEBP"
    reply = requests.delete(f"{horde.api}/generate/status/{request_id}",
                            headers={"apikey": client_key}, timeout=30)  # fmt: skip
    reply.raise_for_status()
    deadline = time.monotonic() + 60
    while running.loop.stats.jobs_cancelled == 0:
        assert time.monotonic() < deadline, "the worker did not stop the cancelled job"
        time.sleep(0.05)
    running.stop()
    assert running.loop.stats.jobs_ok == 0 and running.loop.stats.jobs_faulted == 0


def test_worker_process_rides_out_a_dead_link_and_stops_cleanly_mid_job(
    horde: Any, tmp_path: Path, tiny_model_dir: Path
) -> None:
    from tests.faults.proxy import FaultProxy
    from tests.helpers.live_worker import start_worker

    worker_key, client_key = horde.worker_key, horde.client_key
    port = int(horde.url.rsplit(":", 1)[1])
    with FaultProxy(port) as proxy, start_worker(tmp_path, proxy.url, worker_key) as worker:
        proxy.drop()  # the link is down while the worker starts and pops
        worker.wait_for_log(r"pop failed \(")
        quick = _queue(horde, client_key, params={"width": 64, "height": 64, "steps": 4})
        proxy.pass_through()
        assert _wait_done(horde, client_key, quick)["done"]
        slow = _queue(horde, client_key, params={"width": 128, "height": 128, "steps": 100})
        _wait_running(horde, client_key, slow)
        assert worker.stop(timeout=180) == 0  # SIGTERM mid-job: finish, submit, exit 0
        log = worker.log_text()
    assert log.index("received SIGTERM") < log.index("size=128x128 steps=100")
    status = _wait_done(horde, client_key, slow, timeout=10)
    assert status["done"] and not status["faulted"]
    assert "job " in log and "txt2img model=krita-horde-tiny size=128x128 steps=100" in log
    assert worker_key not in log
