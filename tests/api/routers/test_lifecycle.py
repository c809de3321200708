"""The request lifecycle over the HTTP interface, in both storage modes."""

from __future__ import annotations

import base64
import io
import random
import uuid

from PIL import Image
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.serializers import JSONSerializer

from horde_api.routers.worker_jobs import INLINE_DECODE_LIMIT
from tests.api.conftest import WORKER_MODEL, Horde, image_b64


def _decode(img: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(img)))


def test_txt2img_lifecycle_inline_results(horde: Horde) -> None:
    worker_key = horde.user("volunteer")
    request = horde.request(
        models=[WORKER_MODEL], params={"n": 2, "seed": "42", "seed_variation": 1}, r2=False
    )
    rid = request["id"]
    assert horde.check(rid)["waiting"] == 2

    seeds, popped_ids = [], []
    for _ in range(2):
        job = horde.pop(worker_key)
        popped_ids.append(job["id"])
        assert job["ids"] == [job["id"]] and str(uuid.UUID(job["id"])) == job["id"]
        assert job["model"] == WORKER_MODEL
        assert job["payload"]["ddim_steps"] == 4
        assert job["ttl"] >= 150
        seeds.append(job["payload"]["seed"])
        reply = horde.submit(worker_key, job["id"], generation=image_b64(fmt="PNG"))
        assert reply.status_code == 200, reply.text
    assert sorted(seeds) == ["42", "43"]

    check = horde.check(rid)
    assert check["done"] and check["finished"] == 2 and check["waiting"] == 0
    status = horde.status(rid)
    assert len(status["generations"]) == 2
    # As on the public horde, a generation's id is the id its worker was handed by the pop.
    assert sorted(g["id"] for g in status["generations"]) == sorted(popped_ids)
    for generation in status["generations"]:
        # PNG submissions are converted: clients always get WebP.
        assert _decode(generation["img"]).format == "WEBP"
        assert generation["worker_name"] == "w1"
    # Each image is an rq job that rq's own tools can read.
    job_ids = [
        raw.decode() for raw in horde.ctx.redis.lrange(horde.ctx.keys.request_jobs(rid), 0, -1)
    ]
    jobs = [Job.fetch(i, connection=horde.ctx.redis, serializer=JSONSerializer) for i in job_ids]
    assert all(job.get_status() == JobStatus.FINISHED for job in jobs)
    assert [job.args for job in jobs] == [[rid, 0], [rid, 1]]


def test_a_given_seed_without_variation_is_every_images_seed(horde: Horde) -> None:
    """The public horde's rule: `seed` alone gives n images the same seed."""
    worker_key = horde.user("volunteer")
    horde.request(models=[WORKER_MODEL], params={"n": 2, "seed": "42"})
    seeds = [horde.pop(worker_key)["payload"]["seed"] for _ in range(2)]
    assert seeds == ["42", "42"]


def test_waiting_images_are_rq_jobs_in_rq_queues(horde: Horde) -> None:
    horde.pop(horde.user("volunteer"))  # a worker announces the model: it gets its own queue
    rid = horde.request(models=[WORKER_MODEL], params={"n": 3})["id"]
    queues = [
        q for q in Queue.all(connection=horde.ctx.redis) if q.name.startswith(horde.ctx.keys.prefix)
    ]
    assert [q.name for q in queues] == [horde.ctx.keys.prefix + "q|2.00|0|t|0|" + WORKER_MODEL]
    queue = Queue(queues[0].name, connection=horde.ctx.redis, serializer=JSONSerializer)
    assert queue.count == 3
    assert all(job.args[0] == rid for job in queue.get_jobs())
    horde.pop(horde.user("volunteer"))
    assert queue.count == 2


def test_r2_results_are_https_urls_served_by_the_api(horde: Horde) -> None:
    worker_key = horde.user("volunteer")
    rid = horde.request()["id"]  # r2 defaults to true, like the public horde
    job = horde.pop(worker_key)
    assert horde.submit(worker_key, job["id"]).status_code == 200
    # The horde as reached over TLS (as behind `horde-api serve --ssl-certfile ...`).
    horde.client.base_url = horde.client.base_url.copy_with(scheme="https")
    (generation,) = horde.status(rid)["generations"]
    assert generation["img"].startswith("https://testserver/api/v2/generate/result/")
    image = horde.client.get(generation["img"])
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(image.content)).size == (64, 64)


def test_r2_results_come_inline_when_the_horde_is_plain_http(horde: Horde) -> None:
    """Clients of the public horde download only https links and base64-decode anything else:
    over plain http an `r2` link would be decoded into garbage, so the image comes inline."""
    worker_key = horde.user("volunteer")
    rid = horde.request(r2=True)["id"]
    job = horde.pop(worker_key)
    assert horde.submit(worker_key, job["id"]).status_code == 200
    (generation,) = horde.status(rid)["generations"]
    assert _decode(generation["img"]).format == "WEBP"


def test_upload_then_submit_r2(horde: Horde) -> None:
    worker_key = horde.user("volunteer")
    rid = horde.request(r2=False)["id"]
    job = horde.pop(worker_key)
    upload_path = job["r2_upload"].removeprefix("http://testserver")
    webp = base64.b64decode(image_b64(fmt="WEBP"))
    bad_token = upload_path.split("token=")[0] + "token=wrong"
    assert horde.client.put(bad_token, content=webp).status_code == 403
    assert horde.client.put(upload_path, content=webp).status_code == 200
    assert horde.submit(worker_key, job["id"], generation="R2").status_code == 200
    (generation,) = horde.status(rid)["generations"]
    assert _decode(generation["img"]).format == "WEBP"


def test_large_png_upload_is_stored_as_webp(horde: Horde) -> None:
    """An upload beyond the inline limit is checked and converted off the event loop."""
    worker_key = horde.user("volunteer")
    rid = horde.request(r2=False)["id"]
    job = horde.pop(worker_key)
    noise = Image.frombytes("RGB", (256, 256), random.Random(7).randbytes(256 * 256 * 3))
    out = io.BytesIO()
    noise.save(out, format="PNG")
    assert len(out.getvalue()) > INLINE_DECODE_LIMIT
    upload_path = job["r2_upload"].removeprefix("http://testserver")
    assert horde.client.put(upload_path, content=out.getvalue()).status_code == 200
    assert horde.submit(worker_key, job["id"], generation="R2").status_code == 200
    (generation,) = horde.status(rid)["generations"]
    stored = _decode(generation["img"])
    assert (stored.format, stored.size) == ("WEBP", (256, 256))


def test_r2_submit_without_upload_is_refused(horde: Horde) -> None:
    worker_key = horde.user("volunteer")
    horde.request()
    job = horde.pop(worker_key)
    reply = horde.submit(worker_key, job["id"], generation="R2")
    assert reply.status_code == 400
    assert "r2_upload" in reply.json()["message"]


def test_img2img_and_inpainting_reach_the_worker(horde: Horde) -> None:
    worker_key = horde.user("volunteer")
    source = image_b64(64, 64)
    mask = image_b64(64, 64, mode="L", color=255)
    horde.request(source_image=source, params={"denoising_strength": 0.5})
    job = horde.pop(worker_key)
    assert job["source_image"] == source
    assert job["source_processing"] == "img2img"
    assert job["payload"]["denoising_strength"] == 0.5
    assert horde.submit(worker_key, job["id"]).status_code == 200

    horde.request(source_image=source, source_mask=mask, source_processing="inpainting")
    job = horde.pop(worker_key)
    assert job["source_processing"] == "inpainting"
    assert job["source_mask"] == mask
    assert horde.submit(worker_key, job["id"]).status_code == 200

    transparent = image_b64(64, 64, mode="RGBA", color=(0, 0, 0, 0))
    horde.request(source_image=transparent, source_processing="inpainting")
    job = horde.pop(worker_key)
    assert job["source_mask"] is None
    assert job["source_image"] == transparent


def test_duplicate_submit_is_duplicategen(horde: Horde) -> None:
    worker_key = horde.user("volunteer")
    horde.request()
    job = horde.pop(worker_key)
    assert horde.submit(worker_key, job["id"]).status_code == 200
    again = horde.submit(worker_key, job["id"])
    assert again.status_code == 400
    assert again.json()["rc"] == "DuplicateGen"


def test_worker_name_belongs_to_its_first_user(horde: Horde) -> None:
    horde.pop(horde.user("volunteer"), name="shared-name")
    reply = horde.client.post(
        "/api/v2/generate/pop",
        json={"name": "shared-name", "models": [WORKER_MODEL]},
        headers={"apikey": horde.user("other")},
    )
    assert reply.status_code == 403
    assert reply.json()["rc"] == "WrongCredentials"


def test_anonymous_may_request_but_not_pop(horde: Horde) -> None:
    horde.request(apikey="0000000000")
    reply = horde.client.post(
        "/api/v2/generate/pop", json={"name": "anon"}, headers={"apikey": "0000000000"}
    )
    assert reply.status_code == 403
    assert reply.json()["rc"] == "AnonForbidden"
    missing = horde.client.post("/api/v2/generate/pop", json={"name": "anon"})
    assert missing.status_code == 401


def test_cancel_removes_waiting_images_and_ends_running_ones(horde: Horde) -> None:
    worker_key = horde.user("volunteer")
    rid = horde.request(params={"n": 3})["id"]
    job = horde.pop(worker_key)
    cancelled = horde.client.delete(f"/api/v2/generate/status/{rid}")
    assert cancelled.status_code == 200
    body = cancelled.json()
    # The running image's lease ended with the cancel: the request is done at once.
    assert (body["waiting"], body["processing"], body["done"]) == (0, 0, True)
    assert body["cancelled"] is True
    # Nothing of the cancelled request is handed out any more.
    assert horde.pop(worker_key)["id"] is None
    progress = horde.client.post(
        "/api/v2/generate/progress",
        json={"id": job["id"], "step": 2, "total": 4},
        headers={"apikey": worker_key},
    )
    assert progress.json() == {"cancelled": True}
    # What the worker still delivers is kept.
    assert horde.submit(worker_key, job["id"]).status_code == 200
    final = horde.check(rid)
    assert final["done"] and final["finished"] == 1
    assert len(horde.status(rid)["generations"]) == 1


def test_progress_and_preview(horde: Horde) -> None:
    worker_key = horde.user("volunteer")
    rid = horde.request(params={"n": 2})["id"]
    job = horde.pop(worker_key)
    reply = horde.client.post(
        "/api/v2/generate/progress",
        json={"id": job["id"], "step": 2, "total": 4, "preview": image_b64(32, 32, fmt="WEBP")},
        headers={"apikey": worker_key},
    )
    assert reply.json() == {"cancelled": False}
    assert horde.check(rid)["progress"] == 0.25
    preview = horde.client.get(f"/api/v2/generate/preview/{rid}")
    assert preview.status_code == 200
    assert Image.open(io.BytesIO(preview.content)).size == (32, 32)


def test_unknown_ids_are_404(horde: Horde) -> None:
    for path in (
        "/api/v2/generate/check/00000000-0000-0000-0000-000000000000",
        "/api/v2/generate/status/nope",
        "/api/v2/generate/preview/nope",
        "/api/v2/generate/result/" + "0" * 32 + ".webp",
        "/api/v2/workers/nope",
        "/api/v2/users/999",
    ):
        reply = horde.client.get(path)
        assert reply.status_code == 404, path
        assert reply.json()["rc"] == "NotFound"
    assert horde.client.delete("/api/v2/generate/status/nope").status_code == 404
    assert horde.submit(horde.user("volunteer"), "f" * 32).status_code == 404


def test_models_workers_and_users_endpoints(horde: Horde) -> None:
    key = horde.user("volunteer")
    horde.request(models=[WORKER_MODEL], params={"n": 3})
    horde.pop(key, models=[WORKER_MODEL, "other-model"])
    models = {m["name"]: m for m in horde.client.get("/api/v2/status/models").json()}
    tiny = models[WORKER_MODEL]
    # count: threads of live workers; jobs: images waiting; queued: their megapixel-steps.
    assert tiny["count"] == 1 and tiny["jobs"] == 2
    assert tiny["queued"] == round(2 * 64 * 64 * 4 / 1_000_000, 2)
    assert models["other-model"]["queued"] == 0 and models["other-model"]["jobs"] == 0
    assert horde.client.get(f"/api/v2/status/models/{WORKER_MODEL}").json() == [tiny]
    assert horde.client.get("/api/v2/status/models/nobody-serves-me").json() == []
    (worker,) = horde.client.get("/api/v2/workers").json()
    assert worker["online"] and worker["name"] == "w1" and worker["owner"] == "volunteer#1"
    me = horde.client.get("/api/v2/find_user", headers={"apikey": key}).json()
    assert me["worker_ids"] == [worker["id"]]
    assert horde.client.get(f"/api/v2/users/{me['id']}").json()["username"] == "volunteer#1"
    anon = horde.client.get("/api/v2/find_user", headers={"apikey": "0000000000"}).json()
    assert anon["id"] == 0 and anon["records"]["request"]["image"] == 3
    assert horde.client.get("/api/v2/find_user").status_code == 401  # as on the public horde


def test_maintenance_stops_jobs_and_only_owner_may_set_it(horde: Horde) -> None:
    key = horde.user("volunteer")
    horde.pop(key)
    (worker,) = horde.client.get("/api/v2/workers").json()
    path = f"/api/v2/workers/{worker['id']}"
    other = horde.client.put(path, json={"maintenance": True}, headers={"apikey": horde.user("x")})
    assert other.status_code == 403
    # As on the public horde, only what changed comes back.
    assert horde.client.put(path, json={"maintenance": True}, headers={"apikey": key}).json() == {
        "maintenance": True
    }
    horde.request(prompt="someone else's")
    # In maintenance a worker gets no other user's job: the public horde's 403 WorkerMaintenance.
    refused = horde.client.post(
        "/api/v2/generate/pop",
        json={"name": "w1", "models": [WORKER_MODEL]},
        headers={"apikey": key},
    )
    assert refused.status_code == 403 and refused.json()["rc"] == "WorkerMaintenance"
    # ...but its owner's own requests still reach it (to test it before going live again).
    horde.request(apikey=key, prompt="the owner's")
    assert horde.pop(key)["payload"]["prompt"] == "the owner's"
    horde.client.put(path, json={"maintenance": False}, headers={"apikey": key})
    assert horde.pop(key)["payload"]["prompt"] == "someone else's"
