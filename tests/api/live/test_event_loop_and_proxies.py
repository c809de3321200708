"""The API's event loop is never held by slow work, and a client's address comes from
forwarded headers only when the peer is a configured proxy (the real server, over loopback)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from horde_api.app import create_app
from horde_api.settings import HordeSettings
from tests.api.conftest import FakeClock, image_b64
from tests.helpers.live_horde import start_horde


class _HeldStore:
    """A result store whose reads wait until the test lets them go."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.reading = threading.Event()
        self.release = threading.Event()
        self.finished = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def read(self, ref: str) -> bytes | None:
        self.reading.set()
        self.release.wait(10)
        try:
            return self._store.read(ref)
        finally:
            self.finished.set()


def test_another_request_is_answered_while_a_large_status_is_built(tmp_path: Path) -> None:
    app = create_app(HordeSettings(data_dir=tmp_path), clock=FakeClock(), run_janitor=False)
    ctx = app.state.horde
    with TestClient(app) as client:
        from horde_api.db.users import create_user

        with ctx.sessions() as session:
            _, key = create_user(session, "volunteer")
        rid = client.post(
            "/api/v2/generate/async",
            json={"prompt": "x", "r2": False, "params": {"width": 64, "height": 64}},
        ).json()["id"]
        job = client.post(
            "/api/v2/generate/pop",
            json={"name": "w", "models": ["m"]},
            headers={"apikey": key.apikey},
        ).json()
        body = {"id": job["id"], "generation": image_b64(fmt="WEBP")}
        submitted = client.post(
            "/api/v2/generate/submit", json=body, headers={"apikey": key.apikey}
        )
        assert submitted.status_code == 200
        held = _HeldStore(ctx.store)
        ctx.store = held
        status: dict[str, Any] = {}
        reader = threading.Thread(
            target=lambda: status.update(client.get(f"/api/v2/generate/status/{rid}").json())
        )
        reader.start()
        assert held.reading.wait(10), "the status never read its image"
        # The status is stuck reading its image; the loop still serves others.
        assert client.get("/api/v2/status/heartbeat").status_code == 200
        assert not held.finished.is_set(), "the heartbeat waited for the image read"
        held.release.set()
        reader.join(10)
        assert status["generations"][0]["img"]


def _anonymous(api: str, forwarded_for: str) -> int:
    reply = httpx.post(
        f"{api}/generate/async",
        json={"prompt": "x", "params": {"width": 64, "height": 64}},
        headers={"X-Forwarded-For": forwarded_for},
        timeout=10,
    )
    return reply.status_code


@pytest.mark.parametrize(("trusted", "second"), [("", 429), ("127.0.0.1", 202)])
def test_forwarded_for_counts_only_from_a_trusted_proxy(
    tmp_path: Path, trusted: str, second: int
) -> None:
    """Anonymous users are limited per client address: without a trusted proxy, a header an
    outsider sets must not give them a new address for each request."""
    env = {"HORDE_ANONYMOUS_CONCURRENCY": "1", "HORDE_TRUSTED_PROXIES": trusted}
    with start_horde(tmp_path, extra_env=env) as horde:
        assert _anonymous(horde.api, "203.0.113.1") == 202
        assert _anonymous(horde.api, "203.0.113.2") == second
