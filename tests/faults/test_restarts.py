"""Restarts: the API process SIGKILLed mid-run and Redis restarted lose no request.

Both need the multi-process mode (state in Redis + PostgreSQL, nothing in the API's memory); what
the embedded default mode does not survive is stated in docs/security.md ("Durability") and
pinned by the last test here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from tests.conftest import require
from tests.faults.conftest import horde, shared_storage
from tests.faults.horde_client import HordeClient, SimWorker, wait_until
from tests.faults.own_redis import own_redis
from tests.faults.test_leases import assert_complete
from tests.helpers.live_worker import start_worker

pytestmark = pytest.mark.slow


def _submit_with_retries(client: HordeClient, job_id: str, apikey: str) -> httpx.Response:
    """A worker's submit that rides through an outage (what SimWorker and the real worker do)."""

    def attempt() -> httpx.Response | None:
        try:
            reply = client.submit(job_id, apikey=apikey)
        except httpx.TransportError:
            return None
        return reply if reply.status_code < 500 else None

    return wait_until(attempt, timeout=60, interval=0.2)


@pytest.mark.redis
@pytest.mark.postgres
def test_api_sigkill_and_restart_loses_no_request_nor_running_job(
    tmp_path: Path, redis_url: str, redis_prefix: str, postgres_schema_url: str
) -> None:
    storage = shared_storage(redis_url, redis_prefix, postgres_schema_url)
    with horde(tmp_path, **storage) as live:
        client_key = live.create_user("alice")
        worker_key = live.create_user("wendy")
        with HordeClient(live.api, client_key) as client:
            request_ids = [client.request_id(params={"n": 2, "steps": 8}) for _ in range(4)]
            # Two jobs are "running" on a worker that will answer only after the restart.
            held = [client.pop("holder", apikey=worker_key).json()["id"] for _ in range(2)]
            assert all(held), held
            with start_worker(tmp_path, live.url, worker_key, name="survivor") as worker:
                # Kill the API while the real worker is busy with the queue.
                wait_until(lambda: "job " in worker.log_text(), timeout=120)
                live.kill()
                live.restart()
                for job_id in held:
                    reply = _submit_with_retries(client, job_id, worker_key)
                    assert reply.status_code == 200, reply.text
                statuses = [client.wait_done(rid, timeout=120) for rid in request_ids]
                log = worker.log_text()
            for status in statuses:
                assert_complete(status, 2)
            images = [g["id"] for status in statuses for g in status["generations"]]
            assert len(set(images)) == 8
            assert worker_key not in log


@pytest.mark.postgres
def test_waiting_requests_survive_a_redis_restart(tmp_path: Path, postgres_schema_url: str) -> None:
    require(shutil.which("redis-server") is not None, "redis-server is not installed")
    with own_redis(tmp_path) as redis_server:
        storage = {
            "redis_url": redis_server.url,
            "redis_prefix": "survive:",
            "database_url": postgres_schema_url,
        }
        with horde(tmp_path, **storage) as live:
            client_key = live.create_user("alice")
            worker_key = live.create_user("wendy")
            with HordeClient(live.api, client_key) as client:
                request_ids = [client.request_id(params={"n": 2}) for _ in range(3)]
                redis_server.restart()
                with SimWorker(live.api, worker_key, "after-restart"):
                    statuses = [client.wait_done(rid, timeout=60) for rid in request_ids]
            for status in statuses:
                assert_complete(status, 2)


def test_embedded_mode_does_not_keep_waiting_requests_across_a_restart(tmp_path: Path) -> None:
    """Documented limit of the default mode: its queue lives in the API process's memory."""
    with horde(tmp_path) as live:
        client_key = live.create_user("alice")
        with HordeClient(live.api, client_key) as client:
            request_id = client.request_id()
            live.kill()
            live.restart()
            # Users and keys are in the SQLite file and survive; the queue does not.
            assert client.call("GET", "/find_user").status_code == 200
            assert client.check(request_id).status_code == 404
