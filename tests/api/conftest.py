"""Fixtures of the API tests: an app in either storage mode, a movable clock, test images."""

from __future__ import annotations

import base64
import io
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from horde_api.app import create_app
from horde_api.context import HordeContext
from horde_api.db.users import create_user, find_user
from horde_api.kudos.ledger import KudosEvent, UserKudos, apply_events, to_cents
from horde_api.settings import HordeSettings

WORKER_MODEL = "krita-horde-tiny"


class FakeClock:
    """Time that tests move by hand, so leases and expiry need no sleeping."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def image_b64(
    width: int = 64, height: int = 64, mode: str = "RGB", fmt: str = "PNG", color: Any = None
) -> str:
    default = 128 if mode == "L" else (10, 20, 30)
    image = Image.new(mode, (width, height), color if color is not None else default)
    out = io.BytesIO()
    image.save(out, format=fmt)
    return base64.b64encode(out.getvalue()).decode()


@dataclass
class Horde:
    """The app under test, driven through its HTTP interface."""

    client: TestClient
    ctx: HordeContext
    clock: FakeClock
    keys: dict[str, str] = field(default_factory=dict)

    def user(self, name: str, trusted: bool = False) -> str:
        if name not in self.keys:
            with self.ctx.sessions() as session:
                _, key = create_user(session, name, trusted=trusted)
            self.keys[name] = key.apikey
        return self.keys[name]

    def user_id(self, name: str) -> int:
        self.user(name)
        with self.ctx.sessions() as session:
            user = find_user(session, name)
            assert user is not None
            return user.id

    def give_kudos(self, name: str, kudos: float) -> None:
        """An operator's adjustment of `name`'s balance (as `horde-api kudos add`)."""
        with self.ctx.sessions() as session:
            user = find_user(session, name)
            assert user is not None
            event = KudosEvent(
                event_id=f"admin:{uuid.uuid4().hex}",
                user_id=user.id,
                cents=to_cents(kudos),
                kind=UserKudos.ADMIN,
            )
            apply_events(session, [event])
            session.commit()
        self.ctx.verifier.forget_cached()

    def settle_kudos(self) -> None:
        """Run the janitor until every kudos event has reached the database."""
        while self.ctx.redis.llen(self.ctx.keys.kudos_events):
            self.janitor()
        self.ctx.verifier.forget_cached()

    def balance(self, name: str) -> float:
        with self.ctx.sessions() as session:
            user = find_user(session, name)
            assert user is not None
            return user.kudos_cents / 100

    def request(self, apikey: str = "0000000000", **body: Any) -> dict[str, Any]:
        body.setdefault("prompt", "a cat")
        params = {"width": 64, "height": 64, "steps": 4, **body.pop("params", {})}
        reply = self.client.post(
            "/api/v2/generate/async", json={**body, "params": params}, headers={"apikey": apikey}
        )
        assert reply.status_code == 202, reply.text
        return reply.json()

    def pop(self, apikey: str, name: str = "w1", **body: Any) -> dict[str, Any]:
        body.setdefault("models", [WORKER_MODEL])
        body.setdefault("max_pixels", 512 * 512)
        reply = self.client.post(
            "/api/v2/generate/pop", json={"name": name, **body}, headers={"apikey": apikey}
        )
        assert reply.status_code == 200, reply.text
        return reply.json()

    def submit(self, apikey: str, job_id: str, **body: Any) -> Any:
        body.setdefault("generation", image_b64(fmt="WEBP"))
        return self.client.post(
            "/api/v2/generate/submit", json={"id": job_id, **body}, headers={"apikey": apikey}
        )

    def check(self, request_id: str) -> dict[str, Any]:
        reply = self.client.get(f"/api/v2/generate/check/{request_id}")
        assert reply.status_code == 200, reply.text
        return reply.json()

    def status(self, request_id: str) -> dict[str, Any]:
        reply = self.client.get(f"/api/v2/generate/status/{request_id}")
        assert reply.status_code == 200, reply.text
        return reply.json()

    def janitor(self) -> dict[str, int]:
        return self.ctx.janitor.run_once(self.clock())


HordeFactory = Callable[..., Horde]


@pytest.fixture(
    params=[
        "embedded",
        pytest.param("redis-postgres", marks=[pytest.mark.redis, pytest.mark.postgres]),
    ]
)
def storage_env(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings of one storage mode: embedded (fakeredis + SQLite) or real Redis + PostgreSQL."""
    if request.param == "embedded":
        return {}
    return {
        "redis_url": request.getfixturevalue("redis_url"),
        "redis_prefix": request.getfixturevalue("redis_prefix"),
        "database_url": request.getfixturevalue("postgres_schema_url"),
    }


@pytest.fixture
def make_horde(tmp_path: Path, storage_env: dict[str, Any]) -> Iterator[HordeFactory]:
    clients: list[TestClient] = []

    def factory(**overrides: Any) -> Horde:
        clock = FakeClock()
        settings = HordeSettings(
            data_dir=tmp_path / f"data{len(clients)}", **{**storage_env, **overrides}
        )
        app = create_app(settings, clock=clock, run_janitor=False)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return Horde(client=client, ctx=app.state.horde, clock=clock)

    yield factory
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def horde(make_horde: HordeFactory) -> Horde:
    return make_horde()


@pytest.fixture
def embedded_horde(tmp_path: Path) -> Iterator[Horde]:
    """Embedded mode only, for tests of input handling that storage does not affect."""
    clock = FakeClock()
    app = create_app(HordeSettings(data_dir=tmp_path / "data"), clock=clock, run_janitor=False)
    with TestClient(app) as client:
        yield Horde(client=client, ctx=app.state.horde, clock=clock)
