"""The plug-in's client and job state machine against the real horde API (`horde-api serve`
on loopback, embedded store). A scripted worker pops and submits over HTTP, so the plug-in side
sees exactly what a real worker would produce, without loading a diffusion model."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PyQt5.QtGui import QColor, QImage

from horde_protocol import RequestStatus, RequestStatusCheck
from krita_horde.client import HordeClient
from krita_horde.docker import HordeDocker
from krita_horde.document import DocumentCanvas
from krita_horde.images import encode_image
from krita_horde.job import CANCELLED, DONE, HordeJob, PollPolicy
from krita_horde.preparation import prepare_job
from krita_horde.replies import parse_models
from krita_horde.settings import JobSettings, MemorySettingsStore
from tests.helpers.live_horde import start_horde

from .fake_krita import FakeApp, FakeDocument, FakeSelection

MODEL = "krita-horde-tiny"
POLICY = PollPolicy(interval_s=0.1, long_poll_s=2, min_gap_s=0.05, max_errors=3)


class Horde:
    def __init__(self, url: str, user_key: str, worker_key: str) -> None:
        self.url, self.user_key, self.worker_key = url, user_key, worker_key
        self.api = f"{url}/api/v2"

    def pop(self) -> dict:
        reply = httpx.post(
            f"{self.api}/generate/pop",
            headers={"apikey": self.worker_key},
            json={"name": "scripted-worker", "models": [MODEL], "max_pixels": 2048 * 2048},
            timeout=10,
        )
        reply.raise_for_status()
        return reply.json()

    def submit(self, job_id: str, colour: QColor, width: int, height: int, seed: int) -> None:
        image = QImage(width, height, QImage.Format_RGB32)
        image.fill(colour)
        generation = base64.b64encode(encode_image(image, fmt="webp")).decode()
        reply = httpx.post(
            f"{self.api}/generate/submit",
            headers={"apikey": self.worker_key},
            json={"id": job_id, "generation": generation, "seed": seed},
            timeout=10,
        )
        reply.raise_for_status()


@pytest.fixture(scope="module")
def horde(tmp_path_factory) -> Iterator[Horde]:
    tmp: Path = tmp_path_factory.mktemp("horde")
    with start_horde(tmp) as live:
        worker_key = live.create_user("worker-owner")
        user_key = live.create_user("artist")
        scripted = Horde(live.url, user_key, worker_key)
        # Register the worker (and its model) so requests are possible.
        assert scripted.pop().get("id") is None
        yield scripted


def _settings(horde: Horde, **values) -> JobSettings:
    return JobSettings(
        prompt="a red fox", url=horde.url, apikey=horde.user_key, model=MODEL, **values
    )


def _job(horde: Horde, payload: dict, key: str | None = None) -> HordeJob:
    client = HordeClient(horde.url, key or horde.user_key)
    return HordeJob("live", client, payload, 60, policy=POLICY)


def _serve_one_request(qtbot, horde: Horde, job: HordeJob, colour: QColor) -> dict:
    """Act as the worker for every image of the job's request."""
    qtbot.waitUntil(lambda: job.status.request_id is not None, timeout=10_000)
    popped = []
    for _ in range(job.payload["params"]["n"]):
        pop = {}
        for _attempt in range(50):
            pop = horde.pop()
            if pop.get("id"):
                break
            qtbot.wait(50)
        assert pop.get("id"), f"the horde gave the scripted worker no job: {pop}"
        payload = pop["payload"]
        horde.submit(pop["id"], colour, payload["width"], payload["height"], 1234 + len(popped))
        popped.append(pop)
    return popped[0]


def test_txt2img_job_round_trip(qtbot, horde: Horde) -> None:
    doc = FakeDocument(300, 200)
    prepared = prepare_job(DocumentCanvas(doc), _settings(horde, n=2, seed="99"))
    job = _job(horde, prepared.payload)
    job.start()
    pop = _serve_one_request(qtbot, horde, job, QColor(0, 128, 255))
    assert pop["payload"]["prompt"] == "a red fox"
    assert (pop["payload"]["width"], pop["payload"]["height"]) == (768, 512)
    assert pop["model"] == MODEL and pop.get("source_image") is None
    qtbot.waitUntil(lambda: not job.is_active, timeout=20_000)
    assert job.status.state == DONE, job.status.message
    assert [image.seed for image in job.images] == ["1234", "1235"]
    colour = job.images[0].image.pixelColor(10, 10)
    assert abs(colour.blue() - 255) < 8 and abs(colour.green() - 128) < 8


def test_inpainting_sources_reach_the_worker(qtbot, horde: Horde) -> None:
    doc = FakeDocument(256, 256)
    doc.paint((0, 0, 255, 255), 0, 0, 256, 256)
    doc.setSelection(FakeSelection(0, 0, 64, 64, bytes([255, 0] * 32) * 64))
    prepared = prepare_job(DocumentCanvas(doc), _settings(horde))
    assert prepared.mode == "inpainting"
    job = _job(horde, prepared.payload)
    job.start()
    pop = _serve_one_request(qtbot, horde, job, QColor(10, 200, 10))
    assert pop["source_processing"] == "inpainting"
    assert pop["source_image"] and pop["source_mask"]
    qtbot.waitUntil(lambda: not job.is_active, timeout=20_000)
    assert job.status.state == DONE, job.status.message


def test_check_replies_parse_into_the_protocol_models(qtbot, horde: Horde) -> None:
    prepared = prepare_job(DocumentCanvas(FakeDocument(64, 64)), _settings(horde))
    job = _job(horde, prepared.payload)
    job.start()
    qtbot.waitUntil(lambda: job.status.request_id is not None, timeout=10_000)
    reply = httpx.get(f"{horde.api}/generate/check/{job.status.request_id}", timeout=10).json()
    RequestStatusCheck.model_validate(reply)
    qtbot.waitUntil(lambda: len(job.status.message) > 0 and job.status.state == "queued")
    with qtbot.waitSignal(job.cancelled, timeout=5000):
        job.cancel()
    assert job.status.state == CANCELLED

    def cancelled_on_the_horde() -> bool:
        body = httpx.get(f"{horde.api}/generate/status/{job.status.request_id}", timeout=10)
        status = RequestStatus.model_validate(body.json())
        return status.done or bool(status.cancelled)

    qtbot.waitUntil(cancelled_on_the_horde, timeout=10_000)


def test_wrong_api_key_is_a_clear_message(qtbot, horde: Horde) -> None:
    prepared = prepare_job(DocumentCanvas(FakeDocument(64, 64)), _settings(horde))
    job = _job(horde, prepared.payload, key="not-a-real-key")
    with qtbot.waitSignal(job.failed, timeout=10_000) as failed:
        job.start()
    assert failed.args[0].startswith("could not submit: the horde refused the API key")
    assert "not-a-real-key" not in failed.args[0]


def test_invalid_payload_shows_the_hordes_reason(qtbot, horde: Horde) -> None:
    payload = {"prompt": "x", "params": {"width": 100, "height": 64}}
    job = _job(horde, payload)
    with qtbot.waitSignal(job.failed, timeout=10_000) as failed:
        job.start()
    assert "could not submit: the horde refused the request" in failed.args[0]
    assert "64" in failed.args[0]


def test_model_list_from_the_real_horde(qtbot, horde: Horde) -> None:
    client = HordeClient(horde.url, horde.user_key)
    results = []
    client.models(results.append)
    qtbot.waitUntil(lambda: bool(results), timeout=10_000)
    assert results[0].ok, results[0].error
    assert MODEL in [model.name for model in parse_models(results[0].data)]


def test_docker_job_into_layers_against_the_real_horde(qtbot, horde: Horde) -> None:
    app = FakeApp()
    doc = app.open(FakeDocument(200, 200))
    doc.setSelection(FakeSelection(20, 30, 100, 50))
    docker = HordeDocker(
        app=app, store=MemorySettingsStore(), poll_policy=POLICY, load_models=False
    )
    qtbot.addWidget(docker)
    docker.apply_settings(
        {
            "prompt": "a tiny house",
            "url": horde.url,
            "apikey": horde.user_key,
            "model": MODEL,
            "insert_all": True,
        }
    )
    finished = []
    docker.job_finished.connect(lambda job_id, names: finished.append(names))
    job_id = docker.generate()
    # The payload is built in a background thread: the job exists once it is submitted.
    qtbot.waitUntil(lambda: docker.jobs[job_id].job is not None, timeout=10_000)
    job = docker.jobs[job_id].job
    _serve_one_request(qtbot, horde, job, QColor(255, 0, 0))
    qtbot.waitUntil(lambda: bool(finished), timeout=20_000)
    assert finished[0] == ["a tiny house [seed 1234]"]
    layer = doc.rootNode().childNodes()[-1].childNodes()[0]
    pixels = layer.pixelData(20, 30, 100, 50)
    assert pixels[2] > 240 and pixels[1] < 15  # red (B,G,R,A) across the selection
    assert layer.pixelData(19, 30, 1, 1) == bytes(4)
