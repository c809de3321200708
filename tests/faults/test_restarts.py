"""Restarts: the API process SIGKILLed mid-run and Redis restarted lose no request.

The first two need the multi-process mode (state in Redis + PostgreSQL, nothing in the API's
memory). The embedded default mode keeps its in-process store in a snapshot file: a clean stop
keeps everything, a SIGKILL loses what changed since the last snapshot (docs/security.md,
"Durability"); the last two tests pin both.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pytest

from horde_api.app import EMBEDDED_SNAPSHOT_NAME
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


def _check_counts(client: HordeClient, request_id: str) -> tuple[int, int, int]:
    reply = client.check(request_id)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    return body["waiting"], body["processing"], body["finished"]


def test_embedded_mode_clean_restart_keeps_requests_running_jobs_and_results(
    tmp_path: Path,
) -> None:
    """A clean stop (SIGTERM, Ctrl-C) writes a last snapshot of the in-process store."""
    with horde(tmp_path) as live:
        client_key = live.create_user("alice")
        worker_key = live.create_user("wendy")
        with HordeClient(live.api, client_key) as client:
            finished = client.request_id()
            done_job = client.pop("holder", apikey=worker_key).json()["id"]
            assert client.submit(done_job, apikey=worker_key).status_code == 200
            waiting = client.request_id(params={"n": 2})
            held = client.pop("holder", apikey=worker_key).json()["id"]
            assert held

            live.restart()

            # The finished request still hands out its image; the other keeps its state.
            assert_complete(client.status(finished).json(), 1)
            assert _check_counts(client, waiting) == (1, 1, 0)
            assert client.submit(held, apikey=worker_key).status_code == 200
            with SimWorker(live.api, worker_key, "after-restart"):
                status = client.wait_done(waiting, timeout=60)
            assert_complete(status, 2)
            # Users and keys live in the SQLite file.
            assert client.call("GET", "/find_user").status_code == 200


def _wait_for_a_snapshot_taken_after(path: Path, moment_ns: int) -> None:
    """Wait until the snapshot file holds a copy of the store taken after `moment_ns`.

    The first file written after that moment may hold a copy taken just before it; the one
    written after that was taken once the first was on disk (one thread takes them in turn), so
    it must be later. mtime comes from the kernel's coarse clock, which lags and never leads:
    a file written before `moment_ns` never looks newer.
    """

    def mtime() -> int:
        return path.stat().st_mtime_ns if path.exists() else 0

    first = wait_until(lambda: mtime() if mtime() > moment_ns else 0, timeout=30)
    wait_until(lambda: mtime() > first, timeout=30)


def test_embedded_mode_sigkill_loses_only_what_changed_since_the_last_snapshot(
    tmp_path: Path,
) -> None:
    with horde(tmp_path, extra_env={"HORDE_EMBEDDED_SNAPSHOT_SECONDS": "0.5"}) as live:
        snapshot = Path(live.env["HORDE_DATA_DIR"]) / EMBEDDED_SNAPSHOT_NAME
        client_key = live.create_user("alice")
        worker_key = live.create_user("wendy")
        with HordeClient(live.api, client_key) as client:
            kept = client.request_id(params={"n": 2})
            held = client.pop("holder", apikey=worker_key).json()["id"]
            assert held
            _wait_for_a_snapshot_taken_after(snapshot, time.time_ns())
            live.kill()
            # The next process takes no periodic snapshot (the first is due in an hour), so
            # what it changes before its own SIGKILL is exactly what a crash loses.
            live.env["HORDE_EMBEDDED_SNAPSHOT_SECONDS"] = "3600"
            live.start()
            assert _check_counts(client, kept) == (1, 1, 0)
            lost = client.request_id()
            live.kill()
            live.start()

            assert client.check(lost).status_code == 404
            assert _check_counts(client, kept) == (1, 1, 0)
            assert client.submit(held, apikey=worker_key).status_code == 200
            with SimWorker(live.api, worker_key, "after-crash"):
                status = client.wait_done(kept, timeout=60)
            assert_complete(status, 2)
