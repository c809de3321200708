"""Leases: a job whose worker vanished goes back to the queue after its ttl and another worker
completes it; a late submit is `AbortedGen`; nothing is lost and no image is delivered twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.faults.conftest import STORAGE_MODES, horde, storage_for
from tests.faults.horde_client import HordeClient, SimWorker, wait_until

LEASE_TTL = 2  # seconds; the server's ttl formula is replaced by this in these tests
TTL_ENV = {"HORDE_LEASE_TTL_OVERRIDE_SECONDS": str(LEASE_TTL)}


def assert_complete(status: dict[str, Any], n: int) -> None:
    """`done`, exactly `n` images, no job and no image twice."""
    assert status["done"] is True, status
    assert status["faulted"] is False, status
    generations = status["generations"]
    assert len(generations) == n, generations
    assert len({g["id"] for g in generations}) == n, "an image was delivered twice"
    assert len({g["img"] for g in generations}) == n, "the same image bytes came twice"


@pytest.mark.parametrize("mode", STORAGE_MODES)
def test_job_of_a_vanished_worker_is_completed_by_another_after_the_ttl(
    request: pytest.FixtureRequest, tmp_path: Path, mode: str
) -> None:
    with horde(tmp_path, extra_env=TTL_ENV, **storage_for(request, mode)) as live:
        client_key = live.create_user("alice")
        worker_key = live.create_user("wendy")
        with HordeClient(live.api, client_key) as client:
            request_id = client.request_id(params={"n": 2})
            vanished = client.pop("vanishing-worker", apikey=worker_key)
            assert vanished.status_code == 200, vanished.text
            lost_job = vanished.json()["id"]
            assert lost_job
            # The vanished worker never submits; a second one picks up both jobs, the first
            # one only once its lease ran out.
            with SimWorker(live.api, worker_key, "rescuer") as rescuer:
                status = client.wait_done(request_id, timeout=LEASE_TTL + 30)
            assert_complete(status, 2)
            assert {g["worker_name"] for g in status["generations"]} == {"rescuer"}
            assert len(rescuer.record.popped) == 2
            check = client.check(request_id).json()
            assert check["restarted"] >= 1, check


def test_submit_after_the_ttl_is_aborted_and_the_requeued_copy_completes(
    tmp_path: Path,
) -> None:
    with horde(tmp_path, extra_env=TTL_ENV) as live:
        client_key = live.create_user("alice")
        worker_key = live.create_user("wendy")
        with HordeClient(live.api, client_key) as client:
            request_id = client.request_id()
            popped = client.pop("slow-worker", apikey=worker_key).json()
            late_job = popped["id"]
            assert late_job
            # Wait for the lease to run out and the job to be back in the queue.
            wait_until(lambda: client.check(request_id).json()["restarted"] >= 1, LEASE_TTL + 20)
            late = client.submit(late_job, apikey=worker_key)
            assert late.status_code in (400, 404, 409, 410), late.text
            assert late.json()["rc"] == "AbortedGen", late.text
            with SimWorker(live.api, worker_key, "fast-worker") as fast:
                status = client.wait_done(request_id, timeout=30)
            assert_complete(status, 1)
            assert status["generations"][0]["worker_name"] == "fast-worker"
            assert fast.record.submitted and not fast.record.aborted
            # The late worker still cannot deliver once the copy is done.
            again = client.submit(late_job, apikey=worker_key)
            assert again.status_code >= 400
            assert again.json()["rc"] in ("AbortedGen", "DuplicateGen"), again.text


def test_faulted_jobs_are_requeued_until_the_request_faults(tmp_path: Path) -> None:
    with horde(tmp_path) as live:
        client_key = live.create_user("alice")
        worker_key = live.create_user("wendy")
        with HordeClient(live.api, client_key) as client:
            request_id = client.request_id()
            faults = 0
            # More than 2 faulted submits of a request's jobs fault the request (AI Horde rule).
            while not client.check(request_id).json()["faulted"]:
                job = client.pop("broken-worker", apikey=worker_key).json()["id"]
                assert job, "a faulted job must come back to the queue"
                reply = client.submit(job, apikey=worker_key, generation="", state="faulted")
                assert reply.status_code == 200, reply.text
                faults += 1
                assert faults <= 3, "the request should have faulted after 3 faults"
            assert faults == 3
            status = client.status(request_id).json()
            assert status["faulted"] is True
            assert all(g["state"] != "ok" for g in status["generations"]), status
