"""The API dies between a pop's commit and its reply (deterministically: the test-only fault
point HORDE_TEST_CRASH_AFTER_POP, horde_api/fault_injection.py, exits the API process that
served the pop): the image is served again within the pickup window, without a nonce (the public
horde's workers) and with one (ours)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.faults.conftest import (
    JANITOR_SECONDS,
    PICKUP_SECONDS,
    horde,
    pickup_deadline,
    shared_storage,
)
from tests.faults.horde_client import HordeClient, SimWorker
from tests.faults.stuck import describe_request
from tests.faults.test_leases import assert_complete

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.postgres]
CRASHING_WORKER = "dies-on-pop"


def _pop_that_kills_the_api(client: HordeClient, worker_key: str, **extra: object) -> None:
    with pytest.raises(httpx.TransportError):
        client.pop(CRASHING_WORKER, apikey=worker_key, **extra)


def test_without_a_nonce_the_image_is_served_again_within_the_pickup_window(
    tmp_path: Path, redis_url: str, redis_prefix: str, postgres_schema_url: str
) -> None:
    storage = shared_storage(redis_url, redis_prefix, postgres_schema_url)
    crash = {"HORDE_TEST_CRASH_AFTER_POP": CRASHING_WORKER}
    with horde(tmp_path, extra_env=crash, **storage) as live:
        client_key = live.create_user("alice")
        worker_key = live.create_user("wendy")
        with HordeClient(live.api, client_key) as client:
            request_id = client.request_id()
            _pop_that_kills_the_api(client, worker_key)
            del live.env["HORDE_TEST_CRASH_AFTER_POP"]
            live.restart()
            # Leased before the crash, or already back in the queue if the pickup window has
            # passed during the restart: never lost.
            check = client.check(request_id).json()
            assert check["processing"] + check["waiting"] == 1, check
            with SimWorker(live.api, worker_key, "rescuer"):
                status = client.wait_done(
                    request_id,
                    timeout=pickup_deadline(),
                    explain=lambda: describe_request(redis_url, redis_prefix, request_id),
                )
        assert_complete(status, 1)
        assert status["restarted"] == 0, "a reply that never left is nobody's fault"


def test_with_a_nonce_the_retried_pop_gets_the_same_job_at_once(
    tmp_path: Path, redis_url: str, redis_prefix: str, postgres_schema_url: str
) -> None:
    storage = shared_storage(redis_url, redis_prefix, postgres_schema_url)
    crash = {"HORDE_TEST_CRASH_AFTER_POP": CRASHING_WORKER}
    nonce = "retry-nonce-0001"
    with horde(tmp_path, extra_env=crash, **storage) as live:
        client_key = live.create_user("alice")
        worker_key = live.create_user("wendy")
        with HordeClient(live.api, client_key) as client:
            request_id = client.request_id()
            _pop_that_kills_the_api(client, worker_key, nonce=nonce)
            del live.env["HORDE_TEST_CRASH_AFTER_POP"]
            live.restart()
            # The only image of the request was leased before the crash: a job in the retry's
            # reply can only be that lease, handed back.
            retry = client.pop(CRASHING_WORKER, apikey=worker_key, nonce=nonce).json()
            assert retry["ids"], describe_request(redis_url, redis_prefix, request_id)
            check = client.check(request_id).json()
            assert (check["waiting"], check["processing"]) == (0, 1)
            # Its reply has now left: the pickup window does not take it away from the worker.
            past_window = time.monotonic() + PICKUP_SECONDS + 3 * JANITOR_SECONDS
            with HordeClient(live.api, worker_key) as other:
                while time.monotonic() < past_window:
                    idle = other.pop("bystander", apikey=worker_key).json()
                    assert idle["id"] is None, "the handed-back job went to another worker"
            assert client.submit(retry["id"], apikey=worker_key).status_code == 200
            status = client.wait_done(request_id, timeout=pickup_deadline())
        assert_complete(status, 1)
