"""Leases: expiry puts the image back at the front, late submits abort, faults requeue, uploads
of ended leases are deleted."""

from __future__ import annotations

import base64
from typing import Any

from horde_api.queue.retention import UPLOAD_GRACE_SECONDS
from tests.api.conftest import Horde, image_b64


def test_vanished_worker_job_goes_to_another_worker_after_ttl(horde: Horde) -> None:
    first = horde.user("first")
    second = horde.user("second")
    rid = horde.request()["id"]
    lost = horde.pop(first, name="vanishing")
    assert horde.pop(second, name="steady")["id"] is None

    horde.clock.advance(lost["ttl"] - 1)
    assert horde.janitor()["leases_requeued"] == 0
    horde.clock.advance(2)
    assert horde.janitor()["leases_requeued"] == 1
    assert horde.check(rid)["restarted"] == 1

    retry = horde.pop(second, name="steady")
    assert retry["id"] not in (None, lost["id"])
    assert retry["payload"]["seed"] == lost["payload"]["seed"]
    assert horde.submit(second, retry["id"]).status_code == 200

    late = horde.submit(first, lost["id"])
    assert late.status_code == 400
    assert late.json()["rc"] == "AbortedGen"
    status = horde.status(rid)
    assert status["done"] and [g["worker_name"] for g in status["generations"]] == ["steady"]


def test_submit_after_ttl_aborts_even_before_the_janitor_runs(horde: Horde) -> None:
    key = horde.user("volunteer")
    rid = horde.request()["id"]
    job = horde.pop(key)
    horde.clock.advance(job["ttl"] + 1)
    reply = horde.submit(key, job["id"])
    assert reply.json()["rc"] == "AbortedGen"
    check = horde.check(rid)
    assert check["waiting"] == 1 and check["processing"] == 0


def test_requeued_image_goes_back_to_the_front(horde: Horde) -> None:
    key = horde.user("volunteer")
    older = horde.request(prompt="older")["id"]
    horde.request(prompt="newer")
    job = horde.pop(key)
    assert job["payload"]["prompt"] == "older"
    horde.clock.advance(job["ttl"] + 1)
    horde.janitor()
    again = horde.pop(key)
    assert again["payload"]["prompt"] == "older"
    assert horde.check(older)["restarted"] == 1


def test_configurable_ttl(make_horde) -> None:  # type: ignore[no-untyped-def]
    horde = make_horde(lease_ttl_override_seconds=5)
    key = horde.user("volunteer")
    horde.request()
    assert horde.pop(key)["ttl"] == 5


def test_faulted_submit_requeues_and_three_faults_fail_the_request(horde: Horde) -> None:
    key = horde.user("volunteer")
    rid = horde.request(params={"n": 2})["id"]
    for attempt in range(3):
        job = horde.pop(key)
        assert job["id"] is not None
        reply = horde.submit(key, job["id"], state="faulted", generation="")
        assert reply.status_code == 200, reply.text
        check = horde.check(rid)
        if attempt < 2:
            assert not check["faulted"] and check["waiting"] == 2
    check = horde.check(rid)
    assert check["faulted"] and check["waiting"] == 0
    assert horde.pop(key)["id"] is None


def test_waiting_request_expires_without_activity(horde: Horde) -> None:
    rid = horde.request()["id"]
    horde.clock.advance(20 * 60 - 5)
    assert horde.janitor()["requests_expired"] == 0
    horde.check(rid)  # a client looking at its request keeps it alive
    horde.clock.advance(20 * 60 - 5)
    assert horde.janitor()["requests_expired"] == 0
    horde.clock.advance(10)
    assert horde.janitor()["requests_expired"] == 1
    assert horde.check(rid)["faulted"]
    assert horde.pop(horde.user("volunteer"))["id"] is None


def test_results_are_deleted_after_retention(horde: Horde) -> None:
    key = horde.user("volunteer")
    rid = horde.request()["id"]
    horde.submit(key, horde.pop(key)["id"])
    (generation,) = horde.status(rid)["generations"]
    files = list((horde.ctx.settings.data_dir / "results").glob("*/*.webp"))
    assert len(files) == 1
    horde.clock.advance(2 * 60 * 60 + 1)
    assert horde.janitor()["requests_purged"] == 1
    assert not files[0].exists()
    assert horde.client.get(f"/api/v2/generate/status/{rid}").status_code == 404
    assert horde.client.get(generation["img"]).status_code == 404


def _upload(horde: Horde, job: dict[str, Any]) -> None:
    webp = base64.b64decode(image_b64(fmt="WEBP"))
    path = job["r2_upload"].removeprefix("http://testserver")
    assert horde.client.put(path, content=webp).status_code == 200


def test_uploads_never_submitted_are_deleted_once_their_lease_is_over(horde: Horde) -> None:
    key = horde.user("volunteer")
    horde.request(params={"n": 4})
    abandoned, faulted, submitted = (horde.pop(key) for _ in range(3))
    for job in (abandoned, faulted, submitted):
        _upload(horde, job)
    uploads = horde.ctx.settings.data_dir / "results" / "uploads"
    # A write that died half-way, for a lease long gone from Redis.
    stray = uploads / f"{'ab' * 16}.4242.tmp"
    stray.write_bytes(b"half an image")
    assert horde.submit(key, submitted["id"], generation="R2").status_code == 200
    assert horde.submit(key, faulted["id"], generation="", state="faulted").status_code == 200

    assert horde.janitor()["uploads_purged"] == 1  # the stray: its lease does not exist
    assert not stray.exists()
    assert {p.stem for p in uploads.iterdir()} == {abandoned["id"], faulted["id"]}

    # A job popped and uploaded later: its lease is still active when the others' end.
    horde.clock.advance(abandoned["ttl"] - 1)
    running = horde.pop(key)
    _upload(horde, running)
    assert horde.janitor()["uploads_purged"] == 0
    horde.clock.advance(UPLOAD_GRACE_SECONDS)
    done = horde.janitor()
    assert done["leases_requeued"] == 1  # the abandoned lease ran out
    assert done["uploads_purged"] == 0, "an upload is kept for a grace time after its lease ends"
    horde.clock.advance(2)
    assert horde.janitor()["uploads_purged"] == 2
    assert {p.stem for p in uploads.iterdir()} == {running["id"]}

    assert horde.submit(key, running["id"], generation="R2").status_code == 200
    late = horde.submit(key, abandoned["id"], generation="R2")
    assert late.status_code == 400 and late.json()["rc"] == "AbortedGen"
    assert not list(uploads.iterdir())
