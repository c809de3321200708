"""The real worker process against the real API: killed mid-job, cut off by the network, handed
a corrupt payload. Nothing is lost, each job is submitted once, and the key is never logged."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from horde_worker.config import WorkerSettings
from tests.faults.conftest import horde
from tests.faults.horde_client import HordeClient, wait_until
from tests.faults.images import png_b64, truncated_webp_b64
from tests.faults.proxy import fault_proxy
from tests.faults.tamper import tamper_relay
from tests.faults.test_leases import assert_complete
from tests.helpers.live_worker import start_worker

pytestmark = pytest.mark.slow

# Short network timeouts so that a stalled link is noticed within the test's time.
READ_TIMEOUT = 2.0
QUICK_NETWORK = ("--read-timeout", str(READ_TIMEOUT), "--connect-timeout", "1")
# A hung link shows as a timeout once a held pop (the default long-poll) has waited its read
# timeout on top; a pop-ahead may be in flight before it. With room for a loaded machine.
HELD_POP_SECONDS = WorkerSettings.model_fields["pop_long_poll_seconds"].default
HANG_NOTICED_WITHIN = 2 * READ_TIMEOUT + HELD_POP_SECONDS + 15


def _progress_seen(client: HordeClient, request_id: str) -> bool:
    check = client.check(request_id).json()
    return bool(check.get("progress")) or check["processing"] >= 1


def test_worker_sigkilled_mid_job_is_replaced_after_the_ttl(tmp_path: Path) -> None:
    # The ttl must outlast the rescuer's whole job on a loaded shared machine.
    with horde(tmp_path, extra_env={"HORDE_LEASE_TTL_OVERRIDE_SECONDS": "15"}) as live:
        client_key = live.create_user("alice")
        worker_key = live.create_user("wendy")
        port = int(live.url.rsplit(":", 1)[1])
        with HordeClient(live.api, client_key) as client, fault_proxy(port) as link:
            request_id = client.request_id(params={"steps": 30})
            with start_worker(tmp_path, link.url, worker_key, name="doomed") as doomed:
                wait_until(lambda: _progress_seen(client, request_id), timeout=120)
                # Cut the link first so that the doomed worker cannot have submitted by the
                # time it dies, however fast it ran: the kill is then always mid-job.
                link.drop()
                doomed.kill()
                doomed_log = doomed.log_text()
            assert "state=ok" not in doomed_log, doomed_log
            with start_worker(tmp_path, live.url, worker_key, name="rescuer") as rescuer:
                status = client.wait_done(request_id, timeout=180)
                rescuer_log = rescuer.log_text()
            assert_complete(status, 1)
            assert status["generations"][0]["worker_name"] == "rescuer"
            assert client.check(request_id).json()["restarted"] >= 1
            for log in (doomed_log, rescuer_log, live.log_path.read_text()):
                assert worker_key not in log and client_key not in log


def test_worker_rides_through_drops_and_stalls_and_submits_each_job_once(tmp_path: Path) -> None:
    # A job leased to a pop whose reply a stalled link holds waits for its lease to run out: the
    # ttl is short here, shorter than a held pop's read timeout, so the retried pop (same nonce)
    # finds it back in the queue with a whole ttl rather than the lease's last second.
    with horde(tmp_path, extra_env={"HORDE_LEASE_TTL_OVERRIDE_SECONDS": "8"}) as live:
        client_key = live.create_user("alice")
        worker_key = live.create_user("wendy")
        with (
            HordeClient(live.api, client_key) as client,
            tamper_relay(live.url) as relay,
            fault_proxy(int(relay.url.rsplit(":", 1)[1])) as link,
            start_worker(
                tmp_path, link.url, worker_key, name="flaky-link", extra_args=QUICK_NETWORK
            ) as worker,
        ):
            worker.wait_ready(timeout=120)

            # 1. The link goes down: the worker keeps retrying, with backoff, then recovers.
            link.drop()
            dropped = client.request_id(params={"n": 2})
            wait_until(lambda: link.stats().reset >= 3, timeout=30)
            worker.wait_for_log(r"pop failed .* retrying in", timeout=30)
            link.pass_through()
            assert_complete(client.wait_done(dropped, timeout=120), 2)

            # 2. The link hangs: calls time out, the worker retries, then recovers.
            log_before = len(worker.log_text())
            link.stall()
            stalled = client.request_id()
            worker.wait_for_log(
                r"failed \(.*ReadTimeout\); retrying in", HANG_NOTICED_WITHIN, after=log_before
            )
            link.pass_through()
            assert_complete(client.wait_done(stalled, timeout=120), 1)

            # 3. A submit arrives but its reply is lost: the retry meets DuplicateGen and the
            #    worker counts it as delivered; the request holds the image exactly once.
            relay.lose_next_reply_to("/generate/submit")
            lost_reply = client.request_id()
            assert_complete(client.wait_done(lost_reply, timeout=120), 1)
            worker.wait_for_log(r"already accepted by the horde", timeout=60)
            assert relay.lost_replies == ["/api/v2/generate/submit"]
            log = worker.log_text()
        states = re.findall(r"job \S+ txt2img .* state=(\w+)", log)
        assert states and set(states) == {"ok"}, log
        assert worker_key not in log
        assert worker_key not in live.log_path.read_text()


def _corrupt_source(reply: dict[str, Any]) -> dict[str, Any]:
    return {**reply, "source_image": truncated_webp_b64()}


def test_worker_given_a_corrupt_payload_submits_faulted_and_continues(tmp_path: Path) -> None:
    with horde(tmp_path) as live:
        client_key = live.create_user("alice")
        worker_key = live.create_user("wendy")
        with (
            HordeClient(live.api, client_key) as client,
            tamper_relay(live.url) as relay,
        ):
            relay.corrupt_next_pop(_corrupt_source)
            request_id = client.request_id(
                source_image=png_b64(64, 64, tag="source"),
                source_processing="img2img",
                params={"denoising_strength": 0.5},
            )
            with start_worker(tmp_path, relay.url, worker_key, name="sturdy") as worker:
                status = client.wait_done(request_id, timeout=180)
                log = worker.log_text()
                still_running = worker.process.poll() is None
            assert relay.tampered_ids, "the relay never saw a job to corrupt"
            [tampered] = relay.tampered_ids
            assert re.search(rf"job {tampered} rejected: .*source", log), log
            assert re.search(rf"job {tampered} .* state=faulted", log), log
            # The faulted submit requeued the image and the same worker completed it.
            assert_complete(status, 1)
            assert status["generations"][0]["worker_name"] == "sturdy"
            assert still_running
