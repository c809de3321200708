"""Fixtures of the studio's tests: the horde app in-process (library API tests, both storage
modes) and, for the browser test, one real horde + tiny worker per storage mode and one Chromium
for the whole module."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from horde_api.app import create_app
from horde_api.settings import HordeSettings
from tests.api.conftest import FakeClock, Horde, storage_env  # noqa: F401  (a fixture)
from tests.conftest import POSTGRES_URL, REDIS_URL, port_open, require
from tests.helpers.postgres import fresh_schema


@dataclass
class StudioHorde(Horde):
    """The in-process horde with the library's calls."""

    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, who: str) -> dict[str, str]:
        """`who` is a registered user's name, or `anon:<name>` for an anonymous browser."""
        if who.startswith("anon:"):
            token = self.tokens.setdefault(who, uuid.uuid4().hex)
            return {"apikey": "0000000000", "library-token": token}
        return {"apikey": self.user(who)}

    def library(self, who: str, method: str, path: str, **kwargs: Any) -> Any:
        return self.client.request(
            method, f"/api/v2/library{path}", headers=self.headers(who), **kwargs
        )

    def make(self, who: str, **body: Any) -> str:
        """Queue a request as `who` and keep it in their library; returns its id."""
        apikey = self.headers(who)["apikey"]
        request_id = str(self.request(apikey, models=["krita-horde-tiny"], **body)["id"])
        kept = self.library(who, "POST", "/requests", json={"id": request_id})
        assert kept.status_code == 200, kept.text
        return request_id

    def work(self, count: int = 1) -> list[dict[str, Any]]:
        """A volunteer's worker pops and submits `count` images."""
        volunteer = self.user("volunteer")
        jobs = []
        for _ in range(count):
            job = self.pop(volunteer)
            assert job["id"], job
            assert self.submit(volunteer, job["id"]).status_code == 200
            jobs.append(job)
        return jobs


StudioFactory = Callable[..., StudioHorde]


@pytest.fixture
def make_studio(
    tmp_path: Path,
    storage_env: dict[str, Any],  # noqa: F811  (the fixture imported above)
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[StudioFactory]:
    """`make_studio(data="a", env={...})`: the app on `tmp_path/<data>` (the same name again is
    a restart on the same stores), with library settings from `env`."""
    clients: list[TestClient] = []

    def factory(data: str = "data", env: dict[str, str] | None = None) -> StudioHorde:
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        clock = FakeClock()
        settings = HordeSettings(data_dir=tmp_path / data, **storage_env)
        app = create_app(settings, clock=clock, run_janitor=False)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return StudioHorde(client=client, ctx=app.state.horde, clock=clock)

    yield factory
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def studio(make_studio: StudioFactory) -> StudioHorde:
    return make_studio()


def shared_stores(stack: ExitStack, name: str) -> dict[str, str]:
    """`start_horde` arguments for Redis + PostgreSQL (a fresh prefix and schema)."""
    require(port_open("127.0.0.1", 6379), "Redis is not running on 127.0.0.1:6379")
    require(port_open("127.0.0.1", 5432), "PostgreSQL is not running on 127.0.0.1:5432")
    return {
        "redis_url": REDIS_URL,
        "redis_prefix": f"{name}-{uuid.uuid4().hex[:10]}:",
        "database_url": stack.enter_context(fresh_schema(POSTGRES_URL, name)),
    }
