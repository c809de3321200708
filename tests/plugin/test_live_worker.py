"""The whole chain outside Krita: the docker (fake Krita document) → the real horde API → the
real worker generating with the tiny random-weight model → layers back in the document."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from krita_horde.docker import HordeDocker
from krita_horde.job import PollPolicy
from krita_horde.settings import MemorySettingsStore
from tests.helpers.live_horde import start_horde
from tests.helpers.live_worker import start_worker

from .fake_krita import FakeApp, FakeDocument, FakeSelection

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
MODEL = "krita-horde-tiny"


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> Iterator[tuple[str, str]]:
    tmp = tmp_path_factory.mktemp("chain")
    with start_horde(tmp) as horde:
        worker_key = horde.create_user("volunteer")
        artist_key = horde.create_user("artist")
        with start_worker(tmp, horde.url, worker_key) as worker:
            worker.wait_ready(timeout=180)
            yield horde.url, artist_key


@pytest.mark.parametrize("selection_shape", ["rectangle", "feathered"])
def test_docker_job_through_the_real_worker(qtbot, chain, selection_shape: str) -> None:
    url, key = chain
    app = FakeApp()
    doc = app.open(FakeDocument(160, 120))
    doc.paint((40, 160, 220, 255), 0, 0, 160, 120)
    if selection_shape == "feathered":
        doc.setSelection(FakeSelection(8, 8, 64, 48, bytes([255, 96] * 32) * 48))
    else:
        doc.setSelection(FakeSelection(8, 8, 64, 48))
    docker = HordeDocker(
        app=app,
        store=MemorySettingsStore(),
        poll_policy=PollPolicy(interval_s=0.2, long_poll_s=5),
        load_models=False,
    )
    qtbot.addWidget(docker)
    docker.apply_settings(
        {
            "prompt": "a small boat",
            "insert_all": True,
            "url": url,
            "apikey": key,
            "model": MODEL,
            "steps": 2,
            "min_size": 64,
            "max_size": 128,
            "seed": "5",
            "n": 1,
        }
    )
    outcome: list[tuple[str, object]] = []
    docker.job_finished.connect(lambda job_id, names: outcome.append(("finished", names)))
    docker.job_failed.connect(lambda job_id, message: outcome.append(("failed", message)))
    docker.generate()
    qtbot.waitUntil(lambda: bool(outcome), timeout=120_000)
    assert outcome[0] == ("finished", ["a small boat [seed 5]"]), outcome
    group = doc.rootNode().childNodes()[-1]
    expected_mode = "inpainting" if selection_shape == "feathered" else "img2img"
    assert group.name() == f"Horde #1 {expected_mode}: a small boat"
    layer = next(node for node in group.childNodes() if node.type() == "paintlayer")
    pixels = layer.pixelData(8, 8, 64, 48)
    assert pixels[3::4] == bytes([255]) * (64 * 48)  # the area is fully covered
    assert layer.pixelData(72, 8, 1, 1) == bytes(4)  # and nothing beyond it
