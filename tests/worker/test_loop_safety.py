"""The safety checker in the loop, over loopback HTTP against the stub horde: what the pop
announces, what a censor job is answered with, with and without a checker."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from horde_protocol import GenerationState, MetadataType, MetadataValue
from horde_worker.config import load_settings
from horde_worker.device import resolve_placement
from horde_worker.features import Features
from horde_worker.models import LoadedModel, ModelRegistry
from horde_worker.safety import PLACEHOLDER_RGB, SafetyChecker, checker_files
from horde_worker.tiny_model import TINY_MODEL_NAME
from tests.worker.conftest import RunningLoop
from tests.worker.images_util import decode
from tests.worker.stub_horde import StubHorde
from tests.worker.tiny_safety import FLAG_ALL, FLAG_NONE, write_safety_checker

StartLoop = Callable[..., RunningLoop]
CPU = resolve_placement("cpu", "fp32")


def registry_with_checker(model: LoadedModel, folder: Path | None) -> ModelRegistry:
    """The shared tiny model, with the checker in `folder` loaded beside it (None: none)."""
    registry = ModelRegistry(load_settings(models={TINY_MODEL_NAME: "tiny"}), CPU)
    registry.add(model)
    files = checker_files(folder) if folder is not None else None
    registry.features = Features(safety=SafetyChecker.load(files, CPU) if files else None)
    return registry


@pytest.fixture(scope="module")
def flagging(tiny_model: LoadedModel, tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    folder = write_safety_checker(tmp_path_factory.mktemp("flag-all"), threshold=FLAG_ALL)
    return registry_with_checker(tiny_model, folder)


@pytest.fixture(scope="module")
def passing(tiny_model: LoadedModel, tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    folder = write_safety_checker(tmp_path_factory.mktemp("flag-none"), threshold=FLAG_NONE)
    return registry_with_checker(tiny_model, folder)


def censor_job(stub: StubHorde, **extra: object) -> str:
    return stub.add_job(width=128, height=64, payload={"use_nsfw_censor": True}, **extra)


def test_a_flagged_image_is_submitted_censored_as_a_placeholder(
    stub: StubHorde, start_loop: StartLoop, flagging: ModelRegistry
) -> None:
    job_id = censor_job(stub)
    uncensored = stub.add_job(width=128, height=64)  # no use_nsfw_censor: the checker stays off
    running = start_loop(stub.url, registry=flagging)
    stub.wait_for(lambda: len(stub.submits) == 2)
    assert stub.pops[0].nsfw_censor is True
    by_id = {submit.id: submit for submit in stub.submits}
    censored = by_id[job_id]
    assert censored.state == GenerationState.CENSORED
    [meta] = censored.gen_metadata
    assert (meta.type, meta.value) == (MetadataType.CENSORSHIP, MetadataValue.NSFW)
    image = decode(censored.generation)
    assert image.size == (128, 64)
    # Lossy WebP of one flat grey: every pixel within a step or two of it.
    pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    assert np.abs(pixels - np.array(PLACEHOLDER_RGB)).max() <= 2
    assert by_id[uncensored].state == GenerationState.OK
    assert not by_id[uncensored].gen_metadata
    assert np.asarray(decode(by_id[uncensored].generation)).std() > 10, "a real image"
    running.stop()
    assert running.loop.stats.images_censored == 1 and running.loop.stats.jobs_ok == 2


def test_an_image_the_checker_passes_is_submitted_ok(
    stub: StubHorde, start_loop: StartLoop, passing: ModelRegistry
) -> None:
    job_id = censor_job(stub)
    start_loop(stub.url, registry=passing)
    stub.wait_for(lambda: len(stub.submits) == 1)
    [submit] = stub.submits
    assert (submit.id, submit.state, submit.gen_metadata) == (job_id, GenerationState.OK, [])
    assert np.asarray(decode(submit.generation)).std() > 10


def test_a_worker_without_a_checker_announces_it_and_refuses_a_censor_job(
    stub: StubHorde, start_loop: StartLoop, tiny_model: LoadedModel
) -> None:
    job_id = censor_job(stub)
    follow_up = stub.add_job()
    start_loop(stub.url, registry=registry_with_checker(tiny_model, None))
    stub.wait_for(lambda: len(stub.submits) == 2)
    assert stub.pops[0].nsfw_censor is False
    refused, served = stub.submits
    assert (refused.id, refused.state) == (job_id, GenerationState.FAULTED)
    assert "no safety checker" in (refused.gen_metadata[0].ref or "")
    assert refused.generation == ""
    assert (served.id, served.state) == (follow_up, GenerationState.OK)
