"""Who may act on a handed-out job: submit, progress and upload, in both storage modes.

The AI Horde submit carries only the job id and the `apikey` header (no worker name), exactly as
the public horde checks it (the job's worker's user must be the key's user). Two workers of one
user therefore cannot be told apart on submit: ownership is enforced per user, and the upload URL
is bound to the one hand-out by its token.
"""

from __future__ import annotations

import base64

import httpx

from tests.api.conftest import Horde, image_b64


def _progress(horde: Horde, apikey: str, job_id: str) -> httpx.Response:
    return horde.client.post(
        "/api/v2/generate/progress",
        json={"id": job_id, "step": 1, "total": 4, "preview": image_b64(16, 16, fmt="WEBP")},
        headers={"apikey": apikey},
    )


def test_worker_cannot_submit_or_progress_a_job_another_worker_popped(horde: Horde) -> None:
    """Two workers of two DIFFERENT users ("owner-gpu" of volunteer, "stranger-gpu" of
    stranger), each holding a job of the same request: neither can submit, report progress on
    or upload to the other's job. (Workers of the same user are covered below: the protocol
    cannot separate them.)"""
    owner_key = horde.user("volunteer")
    stranger_key = horde.user("stranger")
    rid = horde.request(params={"n": 2}, r2=False)["id"]
    owner_job = horde.pop(owner_key, name="owner-gpu")
    stranger_job = horde.pop(stranger_key, name="stranger-gpu")
    assert owner_job["id"] and stranger_job["id"] and owner_job["id"] != stranger_job["id"]

    submitted = horde.submit(stranger_key, owner_job["id"])
    assert submitted.status_code == 403, submitted.text
    assert submitted.json()["rc"] == "WrongCredentials"
    progressed = _progress(horde, stranger_key, owner_job["id"])
    assert progressed.status_code == 403, progressed.text
    assert progressed.json()["rc"] == "WrongCredentials"
    # The stranger's own upload token does not open the owner's upload URL.
    stranger_token = stranger_job["r2_upload"].split("token=")[1]
    webp = base64.b64decode(image_b64(fmt="WEBP"))
    uploaded = horde.client.put(
        f"/api/v2/generate/upload/{owner_job['id']}?token={stranger_token}", content=webp
    )
    assert uploaded.status_code == 403, uploaded.text
    assert uploaded.json()["rc"] == "Forbidden"

    # The refusals changed nothing: both jobs still run, no preview, nothing stored.
    check = horde.check(rid)
    assert (check["processing"], check["finished"]) == (2, 0)
    assert horde.client.get(f"/api/v2/generate/preview/{rid}").status_code == 404
    assert not list((horde.ctx.settings.data_dir / "results").rglob("*.webp"))

    # Each worker can still finish its own job, credited to the worker that popped it.
    assert _progress(horde, owner_key, owner_job["id"]).status_code == 200
    assert horde.submit(owner_key, owner_job["id"]).status_code == 200
    assert horde.submit(stranger_key, stranger_job["id"]).status_code == 200
    names = sorted(g["worker_name"] for g in horde.status(rid)["generations"])
    assert names == ["owner-gpu", "stranger-gpu"]


def test_another_worker_of_the_same_user_may_submit_its_job(horde: Horde) -> None:
    """The documented limit of the protocol: submit names no worker, so a job popped by
    "gpu-a" may be submitted with the same user's key (as the public AI Horde allows); the
    result is credited to the worker that popped it."""
    key = horde.user("volunteer")
    rid = horde.request()["id"]
    job = horde.pop(key, name="gpu-a")
    horde.pop(key, name="gpu-b")  # the user's second worker is known and online
    reply = horde.submit(key, job["id"])
    assert reply.status_code == 200, reply.text
    (generation,) = horde.status(rid)["generations"]
    assert generation["worker_name"] == "gpu-a"
