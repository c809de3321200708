"""The horde-sdk layer: our horde over real HTTP, driven by AI Horde's own SDK.

One live `horde-api serve` per storage mode (and one behind TLS) serves the whole module; every
test uses users and worker names of its own. The SDK finds a horde through a module-level base
URL (read from AI_HORDE_URL at its import); the fixtures point it at ours.
"""

from __future__ import annotations

import time
import types
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from horde_sdk.ai_horde_api import ai_horde_clients
from horde_sdk.ai_horde_api.apimodels import base as sdk_base
from loguru import logger

from tests.conftest import POSTGRES_URL, REDIS_URL, port_open, require
from tests.helpers.live_horde import LiveHorde, start_horde
from tests.helpers.postgres import fresh_schema
from tests.helpers.tls import make_tls_files

# The SDK logs every call at length; the test reports say what matters.
logger.disable("horde_sdk")
# The simple client waits 4 s between checks; the flow is the same at 0.2 s.
SDK_POLL_SECONDS = 0.2


@dataclass
class SdkHorde:
    horde: LiveHorde
    mode: str

    @property
    def url(self) -> str:
        return self.horde.url

    def user(self, name: str) -> str:
        return self.horde.create_user(f"{name}-{uuid.uuid4().hex[:6]}")


def _point_sdk_at(monkeypatch: pytest.MonkeyPatch, horde: LiveHorde) -> None:
    # The SDK joins paths onto a base that must end in "/api/".
    monkeypatch.setattr(sdk_base, "AI_HORDE_BASE_URL", f"{horde.url}/api/")
    quick = types.SimpleNamespace(
        time=time.time, sleep=lambda seconds: time.sleep(min(seconds, SDK_POLL_SECONDS))
    )
    monkeypatch.setattr(ai_horde_clients, "time", quick)


@pytest.fixture(
    scope="module",
    params=[
        "embedded",
        pytest.param("redis-postgres", marks=[pytest.mark.redis, pytest.mark.postgres]),
    ],
)
def live_sdk_horde(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SdkHorde]:
    with ExitStack() as stack:
        options: dict[str, str] = {}
        if request.param == "redis-postgres":
            require(port_open("127.0.0.1", 6379), "Redis is not running on 127.0.0.1:6379")
            require(port_open("127.0.0.1", 5432), "PostgreSQL is not running on 127.0.0.1:5432")
            options = {
                "redis_url": REDIS_URL,
                "redis_prefix": f"sdk-{uuid.uuid4().hex[:10]}:",
                "database_url": stack.enter_context(fresh_schema(POSTGRES_URL, "sdk")),
            }
        folder = tmp_path_factory.mktemp(f"sdk-{request.param}")
        horde = stack.enter_context(start_horde(folder, **options))
        yield SdkHorde(horde, request.param)


@pytest.fixture
def sdk_horde(live_sdk_horde: SdkHorde, monkeypatch: pytest.MonkeyPatch) -> SdkHorde:
    _point_sdk_at(monkeypatch, live_sdk_horde.horde)
    return live_sdk_horde


@pytest.fixture(scope="module")
def live_tls_horde(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SdkHorde]:
    folder: Path = tmp_path_factory.mktemp("sdk-tls")
    tls = make_tls_files(folder / "tls")
    with start_horde(folder, tls=tls) as horde:
        yield SdkHorde(horde, "tls")


@pytest.fixture
def tls_horde(live_tls_horde: SdkHorde, monkeypatch: pytest.MonkeyPatch) -> SdkHorde:
    _point_sdk_at(monkeypatch, live_tls_horde.horde)
    # The SDK's requests calls (API and image downloads) trust the test CA, as a client of a
    # horde with a private CA would be configured to.
    assert live_tls_horde.horde.tls is not None
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(live_tls_horde.horde.tls.ca_file))
    return live_tls_horde
