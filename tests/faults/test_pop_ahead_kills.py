"""Kill tests of the worker's pop-ahead (worker/pipeline.py): a real `horde-worker` process on the
tiny model against the real API, stopped while it holds the job it popped ahead. Nothing is
lost: after SIGTERM the popped-ahead job is answered faulted at once (the horde requeues it) and
the running one is finished; after SIGKILL both come back when their leases run out. Another
worker then completes every request with all its images."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from tests.faults.conftest import horde
from tests.faults.horde_client import HordeClient
from tests.faults.test_leases import assert_complete
from tests.helpers.live_worker import LiveWorker, start_worker

pytestmark = pytest.mark.slow

IMAGES_PER_REQUEST = 2
# Long enough jobs (seconds each on a CPU) that the job popped ahead is still waiting for the
# running one when the signal comes right after the pop-ahead was logged.
PARAMS = {"width": 256, "height": 256, "steps": 60, "n": IMAGES_PER_REQUEST}
REQUESTS = 3
# The SIGKILL test's leases: short, so that the killed worker's jobs come back soon; its jobs
# small, so that each one (seconds even on a loaded machine) fits its ttl.
KILL_TTL_SECONDS = 20
KILL_PARAMS = {"width": 128, "height": 128, "steps": 20, "n": IMAGES_PER_REQUEST}
DONE_TIMEOUT = 600.0  # 6 images at a few seconds each, plus the ttl, on a shared machine


def _queue(client: HordeClient, params: dict[str, int]) -> list[str]:
    return [
        client.request_id(f"a lighthouse {index}", params=dict(params)) for index in range(REQUESTS)
    ]


def _popped_ahead(worker: LiveWorker) -> str:
    return worker.wait_for_log(r"job (\S+) popped ahead", timeout=300).group(1)


def _finish_with_another_worker(
    tmp_path: Path, live: Any, client: HordeClient, worker_key: str, request_ids: list[str]
) -> list[dict[str, Any]]:
    with start_worker(tmp_path, live.url, worker_key, name="second") as second:
        statuses = [client.wait_done(rid, timeout=DONE_TIMEOUT) for rid in request_ids]
        assert second.stop(timeout=180) == 0
    for status in statuses:
        assert_complete(status, IMAGES_PER_REQUEST)
    return statuses


def test_sigterm_hands_back_the_popped_ahead_job_and_loses_nothing(tmp_path: Path) -> None:
    with horde(tmp_path) as live:
        client_key = live.create_user("alice", kudos=10_000)  # long jobs: kudos up front
        worker_key = live.create_user("wendy")
        with HordeClient(live.api, client_key) as client:
            request_ids = _queue(client, PARAMS)
            with start_worker(tmp_path, live.url, worker_key, name="first") as first:
                ahead = _popped_ahead(first)
                first.signal(signal.SIGTERM)
                assert first.process.wait(timeout=300) == 0
                log = first.log_text()
            # The job popped ahead went back at once; the running one was finished.
            assert f"job {ahead} handed back unstarted: the worker is shutting down" in log
            assert f"job {ahead} unknown model=" in log and "state=returned" in log
            assert "state=ok" in log
            statuses = _finish_with_another_worker(tmp_path, live, client, worker_key, request_ids)
    # Nothing twice, nothing lost: the first worker's images are exactly the jobs it logged ok;
    # the other one made the rest, the job handed back among them.
    made_by = [g["worker_name"] for status in statuses for g in status["generations"]]
    finished_first = log.count("state=ok")
    assert made_by.count("first") == finished_first
    assert made_by.count("second") == REQUESTS * IMAGES_PER_REQUEST - finished_first


def test_sigkill_while_holding_a_popped_ahead_job_loses_nothing(tmp_path: Path) -> None:
    ttl_env = {"HORDE_LEASE_TTL_OVERRIDE_SECONDS": str(KILL_TTL_SECONDS)}
    with horde(tmp_path, extra_env=ttl_env) as live:
        client_key = live.create_user("alice", kudos=10_000)  # long jobs: kudos up front
        worker_key = live.create_user("wendy")
        with HordeClient(live.api, client_key) as client:
            request_ids = _queue(client, KILL_PARAMS)
            with start_worker(tmp_path, live.url, worker_key, name="first") as first:
                _popped_ahead(first)
                first.kill()
            statuses = _finish_with_another_worker(tmp_path, live, client, worker_key, request_ids)
    made_by = [g["worker_name"] for status in statuses for g in status["generations"]]
    # The running job and the one popped ahead were leased to the killed worker when it died:
    # they came back after their ttl and the other worker made them (and everything left).
    assert made_by.count("second") >= 2
    assert len(made_by) == REQUESTS * IMAGES_PER_REQUEST
