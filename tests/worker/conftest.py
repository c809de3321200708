"""Worker fixtures: the tiny model built once per session, loaded once, and a loop factory."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from horde_worker.config import WorkerSettings, load_settings
from horde_worker.device import resolve_placement
from horde_worker.horde_client import HordeClient
from horde_worker.job import Capabilities
from horde_worker.loop import WorkerLoop
from horde_worker.models import LoadedModel, ModelRegistry
from horde_worker.tiny_model import TINY_MODEL_NAME, ensure_tiny_pipeline
from tests.helpers.live_worker import test_cache_dir
from tests.worker.stub_horde import StubHorde, running_stub

TEST_KEY = "test-key-0123456789"


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    return ensure_tiny_pipeline(test_cache_dir())


@pytest.fixture(scope="session")
def tiny_registry(tiny_model_dir: Path) -> ModelRegistry:
    settings = load_settings(models={TINY_MODEL_NAME: "tiny"}, cache_dir=test_cache_dir())
    registry = ModelRegistry(settings, resolve_placement("cpu", "fp32"))
    registry.load_all()
    return registry


@pytest.fixture(scope="session")
def tiny_model(tiny_registry: ModelRegistry) -> LoadedModel:
    model = tiny_registry.get(TINY_MODEL_NAME)
    assert model is not None
    return model


@pytest.fixture
def capabilities() -> Capabilities:
    return Capabilities((TINY_MODEL_NAME,), 512 * 512, True, True)


@pytest.fixture
def stub() -> Iterator[StubHorde]:
    with running_stub() as horde:
        yield horde


class RunningLoop:
    """A WorkerLoop serving in a thread of the test process."""

    def __init__(self, loop: WorkerLoop) -> None:
        self.loop = loop
        self.thread = threading.Thread(target=loop.run, daemon=True)

    def stop(self, timeout: float = 60.0) -> None:
        self.loop.shutdown.request()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "worker loop did not stop"


@pytest.fixture
def start_loop(tiny_registry: ModelRegistry) -> Iterator[Callable[..., RunningLoop]]:
    """start_loop(horde_url, registry=None, **settings) → a running loop on the shared tiny
    model (or on `registry`)."""
    running: list[RunningLoop] = []

    def start(
        horde_url: str, registry: ModelRegistry | None = None, **overrides: Any
    ) -> RunningLoop:
        options: dict[str, Any] = {
            "horde_url": horde_url,
            "api_key": TEST_KEY,
            "name": "loop-test",
            "models": {TINY_MODEL_NAME: "tiny"},
            "cache_dir": test_cache_dir(),
            "idle_initial_delay": 0.05,
            "idle_max_delay": 0.2,
            "retry_initial_delay": 0.05,
            "retry_max_delay": 0.2,
            "connect_timeout": 2.0,
            "read_timeout": 10.0,
            "progress_interval": 0.05,
            "preview_every": 2,
        }
        options.update(overrides)
        settings: WorkerSettings = load_settings(**options)
        client = HordeClient(
            settings.horde_url,
            settings.require_api_key(),
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
        )
        loop = RunningLoop(WorkerLoop(settings, registry or tiny_registry, client))
        loop.thread.start()
        running.append(loop)
        return loop

    yield start
    for loop in running:
        if loop.thread.is_alive():
            loop.stop()
