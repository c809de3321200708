"""The horde with its results in an S3 bucket (moto over HTTPS), in both storage modes: workers
PUT to presigned URLs with the worker's own upload code, clients GET presigned links, inline
results come from the bucket, the janitor cleans the bucket, and a bucket outage loses nothing."""

from __future__ import annotations

import base64
import io
import time
import uuid
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer
from PIL import Image

from horde_api.queue.retention import UPLOAD_GRACE_SECONDS
from horde_api.studio import library
from horde_worker.horde_client import HordeClient
from tests.api.conftest import Horde, HordeFactory, image_b64
from tests.api.store.conftest import SECRET_ACCESS_KEY, Bucket, MotoS3Server, new_bucket
from tests.studio.conftest import StudioHorde

RETENTION = 7200.0


def png(size: int = 64, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), color).save(out, format="PNG")
    return out.getvalue()


def worker_upload(url: str, data: bytes) -> None:
    """The worker's real upload: requests' PUT with only `Content-Type: image/webp`."""
    HordeClient("http://127.0.0.1:9", "unused-key").upload(url, data)


def day_of(horde: Horde) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(horde.clock()))


def s3_horde(make_horde: HordeFactory, bucket: Bucket, **overrides: Any) -> Horde:
    return make_horde(**bucket.settings, result_retention_seconds=RETENTION, **overrides)


def test_r2_upload_to_the_bucket_and_r2_links_out_of_it(
    make_horde: HordeFactory, bucket: Bucket
) -> None:
    horde = s3_horde(make_horde, bucket)
    key = horde.user("volunteer")
    rid = horde.request()["id"]  # r2 is true by default
    job = horde.pop(key)
    endpoint = bucket.settings["results_s3_endpoint_url"]
    assert job["r2_upload"].startswith(f"{endpoint}/{bucket.name}/horde/uploads/{job['id']}.webp?")
    assert "X-Amz-Signature=" in job["r2_upload"] and job["r2_uploads"] == [job["r2_upload"]]

    # A PNG, as a worker may send: the bucket takes anything, the submit checks and converts it.
    worker_upload(job["r2_upload"], png())
    assert bucket.keys() == {f"horde/uploads/{job['id']}.webp"}
    assert horde.submit(key, job["id"], generation="R2").status_code == 200
    result_key = f"horde/{day_of(horde)}/{job['id']}.webp"
    assert bucket.keys() == {result_key}, "the upload became the result"

    (generation,) = horde.status(rid)["generations"]
    link = generation["img"]
    assert link.startswith(f"{endpoint}/{bucket.name}/{result_key}?")
    fetched = httpx.get(link, verify=str(bucket.settings["results_s3_ca_bundle"]))
    assert fetched.status_code == 200
    image = Image.open(io.BytesIO(fetched.content))
    assert (image.format, image.size) == ("WEBP", (64, 64))
    assert image.convert("RGB").getpixel((32, 32))[0] > 150, "the worker's red image"
    # The API's own result endpoint serves the same bytes, read from the bucket.
    image_id = horde.ctx.redis.hget(horde.ctx.keys.lease(job["id"]), "job").decode()
    served = horde.client.get(f"/api/v2/generate/result/{image_id}.webp")
    assert served.status_code == 200 and served.content == fetched.content


def test_inline_results_are_read_from_the_bucket(make_horde: HordeFactory, bucket: Bucket) -> None:
    horde = s3_horde(make_horde, bucket)
    key = horde.user("volunteer")
    rid = horde.request(r2=False)["id"]
    job = horde.pop(key)
    assert horde.submit(key, job["id"], generation=image_b64(fmt="WEBP")).status_code == 200
    result_key = f"horde/{day_of(horde)}/{job['id']}.webp"
    (generation,) = horde.status(rid)["generations"]
    assert base64.b64decode(generation["img"]) == bucket.get(result_key)

    # What the bucket holds is what the client gets: replace the object behind the horde's back.
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 255, 0)).save(out, format="WEBP")
    bucket.client.put_object(Bucket=bucket.name, Key=result_key, Body=out.getvalue())
    (generation,) = horde.status(rid)["generations"]
    assert base64.b64decode(generation["img"]) == out.getvalue()


def test_a_bad_upload_is_refused_at_submit_and_the_job_can_still_be_delivered(
    make_horde: HordeFactory, bucket: Bucket
) -> None:
    horde = s3_horde(make_horde, bucket, max_result_bytes=4096)
    key = horde.user("volunteer")
    rid = horde.request(r2=False)["id"]
    job = horde.pop(key)
    worker_upload(job["r2_upload"], b"this is no image")
    reply = horde.submit(key, job["id"], generation="R2")
    assert reply.status_code == 400 and reply.json()["rc"] == "ImageValidationFailed"

    worker_upload(job["r2_upload"], b"\0" * 5000)  # past HORDE_MAX_RESULT_BYTES
    reply = horde.submit(key, job["id"], generation="R2")
    assert reply.status_code == 400 and "4096 bytes" in reply.json()["message"]

    worker_upload(job["r2_upload"], png())
    assert horde.submit(key, job["id"], generation="R2").status_code == 200
    (generation,) = horde.status(rid)["generations"]
    assert Image.open(io.BytesIO(base64.b64decode(generation["img"]))).format == "WEBP"


def test_an_upload_that_never_happens(make_horde: HordeFactory, bucket: Bucket) -> None:
    horde = s3_horde(make_horde, bucket)
    key = horde.user("volunteer")
    rid = horde.request(r2=False)["id"]
    first = horde.pop(key)
    reply = horde.submit(key, first["id"], generation="R2")
    assert reply.status_code == 400 and "r2_upload" in reply.json()["message"]

    horde.clock.advance(first["ttl"] + 1)
    done = horde.janitor()
    assert done["leases_requeued"] == 1 and done["uploads_purged"] == 0
    assert horde.check(rid)["waiting"] == 1
    assert bucket.keys() == set()

    # The first worker wakes up late: its presigned URL still takes the PUT, its submit does
    # not, and the janitor deletes the upload once the lease's grace is over.
    second = horde.pop(key, name="w2")
    worker_upload(first["r2_upload"], png())
    assert horde.submit(key, first["id"], generation="R2").json()["rc"] == "AbortedGen"
    worker_upload(second["r2_upload"], png(color=(0, 0, 200)))
    assert horde.submit(key, second["id"], generation="R2").status_code == 200
    horde.clock.advance(UPLOAD_GRACE_SECONDS + 60)
    assert horde.janitor()["uploads_purged"] == 1
    assert bucket.keys() == {f"horde/{day_of(horde)}/{second['id']}.webp"}
    assert horde.check(rid)["done"]


def test_retention_empties_the_bucket(make_horde: HordeFactory, bucket: Bucket) -> None:
    horde = s3_horde(make_horde, bucket)
    key = horde.user("volunteer")
    rid = horde.request(r2=False, params={"n": 3})["id"]
    kept, faulted, late = (horde.pop(key, name=f"w{i}") for i in range(3))
    for job in (kept, faulted, late):
        worker_upload(job["r2_upload"], png())
    assert horde.submit(key, kept["id"], generation="R2").status_code == 200
    # Faulted with an upload in the bucket: the upload is garbage once the lease's time is up.
    faulted_reply = horde.submit(key, faulted["id"], generation="", state="faulted")
    assert faulted_reply.status_code == 200
    assert horde.janitor()["uploads_purged"] == 0, "leases still within their time"
    day = day_of(horde)
    assert bucket.keys() == {
        f"horde/{day}/{kept['id']}.webp",
        f"horde/uploads/{faulted['id']}.webp",
        f"horde/uploads/{late['id']}.webp",
    }

    horde.clock.advance(max(faulted["ttl"], late["ttl"]) + UPLOAD_GRACE_SECONDS + 1)
    done = horde.janitor()
    assert done["uploads_purged"] == 2
    assert bucket.keys() == {f"horde/{day}/{kept['id']}.webp"}
    # The requeued images are generated again and delivered inline.
    for name in ("w3", "w4"):
        job = horde.pop(key, name=name)
        assert horde.submit(key, job["id"]).status_code == 200
    assert horde.check(rid)["done"]
    assert len(bucket.keys()) == 3

    horde.clock.advance(RETENTION + 1)
    assert horde.janitor()["requests_purged"] == 1
    assert bucket.keys() == set()


@pytest.fixture
def flaky_server(s3_server: MotoS3Server, s3_trust: None) -> Any:
    """A server of its own for the test that stops it (the session's keeps serving the rest)."""
    server = MotoS3Server(s3_server.tls)
    server.start()
    yield server
    server.stop()


def test_a_bucket_that_is_briefly_down_loses_nothing(
    make_horde: HordeFactory, flaky_server: MotoS3Server, caplog: pytest.LogCaptureFixture
) -> None:
    bucket = new_bucket(flaky_server)
    horde = s3_horde(make_horde, bucket)
    key = horde.user("volunteer")
    old = horde.request(r2=False)["id"]
    job = horde.pop(key)
    assert horde.submit(key, job["id"]).status_code == 200
    horde.clock.advance(RETENTION + 1)  # `old` is due for deletion while the bucket is down
    rid = horde.request(r2=False, params={"n": 2})["id"]
    inline, uploaded = horde.pop(key, name="w1"), horde.pop(key, name="w2")
    worker_upload(uploaded["r2_upload"], png())

    flaky_server.stop()
    for job_id, generation in ((inline["id"], image_b64(fmt="WEBP")), (uploaded["id"], "R2")):
        reply = horde.submit(key, job_id, generation=generation)
        assert reply.status_code == 503, reply.text
        assert reply.json()["rc"] == "ServiceUnavailable"
        assert "result storage" in reply.json()["message"]
    done = horde.janitor()
    assert done["requests_purged"] == 0 and done["uploads_purged"] == 0
    assert horde.check(rid)["processing"] == 2, "both jobs still run: nothing was requeued"
    assert horde.check(old)["done"], "the old request is still there"

    flaky_server.start()  # back, same port, same buckets
    assert horde.submit(key, inline["id"]).status_code == 200
    assert horde.submit(key, uploaded["id"], generation="R2").status_code == 200
    assert len(horde.status(rid)["generations"]) == 2
    horde.clock.advance(60)
    done = horde.janitor()
    assert done["requests_purged"] == 1, "the request the outage held back"
    day = day_of(horde)
    assert bucket.keys() == {
        f"horde/{day}/{inline['id']}.webp",
        f"horde/{day}/{uploaded['id']}.webp",
    }
    assert SECRET_ACCESS_KEY not in caplog.text


def test_a_bucket_down_while_a_client_reads_inline_is_a_503(
    make_horde: HordeFactory, flaky_server: MotoS3Server
) -> None:
    bucket = new_bucket(flaky_server)
    horde = s3_horde(make_horde, bucket)
    key = horde.user("volunteer")
    rid = horde.request(r2=False)["id"]
    job = horde.pop(key)
    assert horde.submit(key, job["id"]).status_code == 200
    flaky_server.stop()
    reply = horde.client.get(f"/api/v2/generate/status/{rid}")
    assert reply.status_code == 503 and reply.json()["rc"] == "ServiceUnavailable"
    flaky_server.start()
    assert len(horde.status(rid)["generations"]) == 1


def test_the_bucket_is_checked_at_start(
    make_horde: HordeFactory, bucket: Bucket, caplog: pytest.LogCaptureFixture
) -> None:
    settings = {**bucket.settings, "results_s3_bucket": "no-such-bucket-of-ours"}
    with pytest.raises(ValueError, match=r"HORDE_RESULTS_S3_BUCKET.*no-such-bucket-of-ours"):
        make_horde(**settings)
    assert SECRET_ACCESS_KEY not in caplog.text


@pytest.fixture
def plain_http_server(s3_trust: None) -> Any:
    """moto's own ThreadedMotoServer: S3 over plain http, as a MinIO without TLS."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_r2_links_of_a_plain_http_bucket_come_inline(
    make_horde: HordeFactory, plain_http_server: str
) -> None:
    """Clients of the public horde read a link that is not https as base64: an http bucket's
    presigned links would be garbage to them, so the image comes inline, read from the bucket."""
    name = f"results-{uuid.uuid4().hex[:12]}"
    admin = boto3.client(
        "s3",
        endpoint_url=plain_http_server,
        region_name="us-east-1",
        aws_access_key_id="AKIAEXAMPLE",
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )
    admin.create_bucket(Bucket=name)
    horde = make_horde(
        results_s3_bucket=name,
        results_s3_endpoint_url=plain_http_server,
        results_s3_region="us-east-1",
        results_s3_access_key_id="AKIAEXAMPLE",
        results_s3_secret_access_key=SECRET_ACCESS_KEY,
        results_s3_addressing_style="path",
    )
    key = horde.user("volunteer")
    rid = horde.request(r2=True)["id"]
    job = horde.pop(key)
    assert job["r2_upload"].startswith(f"{plain_http_server}/{name}/uploads/")
    worker_upload(job["r2_upload"], png())
    assert horde.submit(key, job["id"], generation="R2").status_code == 200
    (generation,) = horde.status(rid)["generations"]
    stored = admin.get_object(Bucket=name, Key=f"{day_of(horde)}/{job['id']}.webp")["Body"].read()
    assert base64.b64decode(generation["img"]) == stored


def test_a_library_delete_while_the_bucket_is_down_leaves_no_orphan(
    make_horde: HordeFactory, flaky_server: MotoS3Server, caplog: pytest.LogCaptureFixture
) -> None:
    bucket = new_bucket(flaky_server)
    plain = s3_horde(make_horde, bucket)
    studio = StudioHorde(client=plain.client, ctx=plain.ctx, clock=plain.clock)
    request_id = studio.make("alice", params={"width": 64, "height": 64, "n": 2})
    studio.work(2)
    kept = studio.library("alice", "GET", f"/requests/{request_id}").json()
    first, second = (image["id"] for image in kept["images"])
    with studio.ctx.sessions() as session:
        row = library.find_request(session, "user:1", request_id)
        assert row is not None
        refs = {f"horde/{image.ref}" for image in row.images}
    assert refs <= bucket.keys(), "the library's copies are in the bucket"

    flaky_server.stop()
    # The artist's delete is answered at once; the objects wait for the bucket.
    assert studio.library("alice", "DELETE", f"/images/{first}").status_code == 200
    assert studio.library("alice", "DELETE", f"/images/{second}").status_code == 200
    assert studio.library("alice", "GET", f"/requests/{request_id}").status_code == 404
    assert "stay listed for deletion" in caplog.text

    flaky_server.start()
    assert refs <= bucket.keys(), "nothing was deleted while the bucket was down"
    with studio.ctx.sessions() as session:
        assert library.delete_pending(session, studio.ctx.store) == 2
        assert library.delete_pending(session, studio.ctx.store) == 0
    assert not refs & bucket.keys(), "no orphan is left once the bucket is back"
