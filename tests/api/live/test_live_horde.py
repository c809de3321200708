"""The real `horde-api serve` process over loopback HTTP, in both storage modes."""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import WORKER_MODEL, image_b64
from tests.helpers.live_horde import start_horde

pytestmark = pytest.mark.e2e


def _request(api: str, **body: Any) -> str:
    body.setdefault("prompt", "a lighthouse")
    body.setdefault("params", {"width": 64, "height": 64, "steps": 4})
    reply = httpx.post(f"{api}/generate/async", json=body, headers={"apikey": "0000000000"})
    assert reply.status_code == 202, reply.text
    return str(reply.json()["id"])


def _pop(api: str, key: str, name: str = "live-worker") -> dict[str, Any]:
    reply = httpx.post(
        f"{api}/generate/pop",
        json={"name": name, "models": [WORKER_MODEL], "max_pixels": 512 * 512},
        headers={"apikey": key},
    )
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def _submit(api: str, key: str, job_id: str) -> httpx.Response:
    return httpx.post(
        f"{api}/generate/submit",
        json={"id": job_id, "generation": image_b64(fmt="WEBP"), "seed": 1},
        headers={"apikey": key},
    )


def _check(api: str, request_id: str) -> dict[str, Any]:
    reply = httpx.get(f"{api}/generate/check/{request_id}")
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def test_lifecycle_over_real_http(tmp_path: Path, storage_env: dict[str, Any]) -> None:
    with start_horde(tmp_path, **storage_env) as horde:
        key = horde.create_user("volunteer")
        rid = _request(horde.api, r2=False)
        job = _pop(horde.api, key)
        assert _submit(horde.api, key, job["id"]).status_code == 200
        status = httpx.get(f"{horde.api}/generate/status/{rid}").json()
        assert status["done"]
        (generation,) = status["generations"]
        assert base64.b64decode(generation["img"])[8:12] == b"WEBP"
        assert httpx.get(f"{horde.url}/openapi.json").json()["info"]["title"] == "krita-horde API"


def test_restart_loses_no_request(tmp_path: Path, storage_env: dict[str, Any]) -> None:
    with start_horde(tmp_path, **storage_env) as horde:
        key = horde.create_user("volunteer")
        rid = _request(horde.api, params={"width": 64, "height": 64, "steps": 4, "n": 3})
        running = _pop(horde.api, key)
        horde.restart()
        check = _check(horde.api, rid)
        assert (check["waiting"], check["processing"]) == (2, 1)
        assert _submit(horde.api, key, running["id"]).status_code == 200
        for _ in range(2):
            assert _submit(horde.api, key, _pop(horde.api, key)["id"]).status_code == 200
        assert _check(horde.api, rid)["done"]


def test_vanished_worker_job_completes_elsewhere(
    tmp_path: Path, storage_env: dict[str, Any]
) -> None:
    fast_leases = {
        "HORDE_LEASE_TTL_OVERRIDE_SECONDS": "1",
        "HORDE_JANITOR_INTERVAL_SECONDS": "0.1",
    }
    with start_horde(tmp_path, extra_env=fast_leases, **storage_env) as horde:
        first = horde.create_user("first")
        second = horde.create_user("second")
        rid = _request(horde.api)
        lost = _pop(horde.api, first, name="vanishing")
        assert lost["ttl"] == 1
        deadline = time.monotonic() + 15
        while _check(horde.api, rid)["restarted"] == 0:
            assert time.monotonic() < deadline, "the expired lease was never requeued"
            time.sleep(0.05)
        retry = _pop(horde.api, second, name="steady")
        assert retry["id"] is not None
        assert _submit(horde.api, second, retry["id"]).status_code == 200
        assert _submit(horde.api, first, lost["id"]).json()["rc"] == "AbortedGen"
        assert _check(horde.api, rid)["done"]


LONG_POLL_SECONDS = 25.0
# A loaded 2-core machine answers well within this; a long-poll that is not woken by the submit
# answers only after LONG_POLL_SECONDS.
WOKEN_WITHIN_SECONDS = 2.0


def test_long_poll_wakes_on_submit(tmp_path: Path, storage_env: dict[str, Any]) -> None:
    with start_horde(tmp_path, **storage_env) as horde:
        key = horde.create_user("volunteer")
        rid = _request(horde.api)
        job = _pop(horde.api, key)
        sent = threading.Event()
        result: dict[str, Any] = {}

        def trace(event: str, _info: dict[str, Any]) -> None:
            # The whole request is on the wire; the client now waits for the reply.
            if event == "http11.receive_response_headers.started":
                sent.set()

        def long_poll() -> None:
            with httpx.Client(timeout=LONG_POLL_SECONDS + 15) as client:
                reply = client.get(
                    f"{horde.api}/generate/check/{rid}",
                    params={"wait": LONG_POLL_SECONDS},
                    extensions={"trace": trace},
                )
            result["answered_at"] = time.monotonic()
            result["body"] = reply.json()

        poller = threading.Thread(target=long_poll)
        poller.start()
        assert sent.wait(10), "the long-poll request was never sent"
        submit_started = time.monotonic()
        assert _submit(horde.api, key, job["id"]).status_code == 200
        submitted = time.monotonic()
        poller.join(LONG_POLL_SECONDS + 20)
        assert not poller.is_alive()
        # The request was running when the poll started, so the poll had nothing to answer
        # before the submit: its only reply is the finished request, soon after the submit.
        assert result["body"]["done"] and result["body"]["finished"] == 1, result["body"]
        assert result["answered_at"] >= submit_started
        late = result["answered_at"] - submitted
        assert late < WOKEN_WITHIN_SECONDS, (
            f"the long-poll answered {late:.1f} s after the submit (wait={LONG_POLL_SECONDS}):"
            " it was not woken by the submit"
        )


@pytest.mark.redis
@pytest.mark.postgres
def test_two_api_processes_share_one_queue(
    tmp_path: Path, redis_url: str, redis_prefix: str, postgres_schema_url: str
) -> None:
    shared = {
        "redis_url": redis_url,
        "redis_prefix": redis_prefix,
        "database_url": postgres_schema_url,
    }
    with (
        start_horde(tmp_path / "a", **shared) as front,
        start_horde(tmp_path / "b", **shared) as back,
    ):
        key = front.create_user("volunteer")
        rid = _request(front.api, params={"width": 64, "height": 64, "steps": 4, "n": 4})
        apis = [back.api, front.api] * 2
        jobs = [_pop(api, key) for api in apis]
        assert len({j["id"] for j in jobs}) == 4
        for job, api in zip(jobs, reversed(apis), strict=True):
            assert _submit(api, key, job["id"]).status_code == 200
        assert _check(back.api, rid)["finished"] == 4
