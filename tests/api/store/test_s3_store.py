"""S3ResultStore against moto's S3 over real HTTPS: the promises of the filesystem store."""

from __future__ import annotations

import io
import uuid

import httpx
import pytest
from PIL import Image

from horde_api.settings import HordeSettings
from horde_api.store.results import ResultStoreUnavailable
from horde_api.store.s3 import S3ResultStore
from tests.api.store.conftest import Bucket, MotoS3Server, new_bucket

NOW = 1_800_000_000.0  # 2027-01-15 UTC


def webp(color: tuple[int, int, int] = (10, 20, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(out, format="WEBP")
    return out.getvalue()


def store_of(bucket: Bucket) -> S3ResultStore:
    return S3ResultStore.from_settings(HordeSettings(**bucket.settings))


def test_refs_come_from_day_and_lease_id_only(bucket: Bucket) -> None:
    store = store_of(bucket)
    lease_id = str(uuid.uuid4())
    ref = store.put(lease_id, webp(), NOW)
    assert ref == f"2027-01-15/{lease_id}.webp"
    assert bucket.keys() == {f"horde/{ref}"}
    assert store.read(ref) == webp()
    with pytest.raises(ValueError):
        store.put("../../etc/passwd", webp(), NOW)
    with pytest.raises(ValueError):
        store.put_upload("uploads/x", webp())
    # Anything that is no reference of ours reads as missing, without asking the bucket.
    for bad in ("../x.webp", f"uploads/{lease_id}.webp", f"2027-01-15/{lease_id}.png", ""):
        assert store.read(bad) is None
    assert bucket.keys() == {f"horde/{ref}"}


def test_missing_reads_as_none_and_deletes_are_idempotent(bucket: Bucket) -> None:
    store = store_of(bucket)
    lease_id = str(uuid.uuid4())
    ref = store.put(lease_id, webp(), NOW)
    assert store.read(f"2027-01-15/{uuid.uuid4()}.webp") is None
    store.delete(ref)
    store.delete(ref)
    assert store.read(ref) is None
    store.delete_upload(lease_id)  # never uploaded: nothing to do, no error
    assert bucket.keys() == set()


def test_uploads_stay_apart_until_taken(bucket: Bucket) -> None:
    store = store_of(bucket)
    waiting, taken = str(uuid.uuid4()), str(uuid.uuid4())
    store.put_upload(waiting, webp((1, 2, 3)))
    store.put_upload(taken, webp((4, 5, 6)))
    assert store.upload_ids() == {waiting, taken}
    assert store.read(f"2027-01-15/{waiting}.webp") is None, "an upload is no result yet"

    ref = store.take_upload(taken, NOW, lambda raw: raw)
    assert ref == f"2027-01-15/{taken}.webp"
    assert store.read(ref) == webp((4, 5, 6))
    assert store.upload_ids() == {waiting}
    assert store.take_upload(taken, NOW, lambda raw: raw) is None, "taken once"
    assert bucket.keys() == {f"horde/uploads/{waiting}.webp", f"horde/{ref}"}


def test_take_upload_checks_and_converts_what_the_worker_put(bucket: Bucket) -> None:
    store = store_of(bucket)
    lease_id = str(uuid.uuid4())
    store.put_upload(lease_id, b"raw bytes as the worker PUT them")
    seen: list[bytes] = []

    def check(raw: bytes) -> bytes:
        seen.append(raw)
        return webp()

    ref = store.take_upload(lease_id, NOW, check)
    assert seen == [b"raw bytes as the worker PUT them"]
    assert ref is not None and store.read(ref) == webp()


def test_take_upload_reads_one_byte_past_the_limit_only(bucket: Bucket) -> None:
    store = S3ResultStore.from_settings(HordeSettings(**bucket.settings, max_result_bytes=1000))
    lease_id = str(uuid.uuid4())
    store.put_upload(lease_id, b"x" * 5000)
    seen: list[int] = []

    def refuse(raw: bytes) -> bytes:
        seen.append(len(raw))
        raise ValueError("too large")

    with pytest.raises(ValueError):
        store.take_upload(lease_id, NOW, refuse)
    assert seen == [1001]
    assert store.upload_ids() == {lease_id}, "a refused upload is not taken"


def test_presigned_links_work_over_https(bucket: Bucket) -> None:
    store = store_of(bucket)
    lease_id = str(uuid.uuid4())
    url = store.upload_url(lease_id, "token-unused", "https://horde.example", 300)
    assert url.startswith(bucket.settings["results_s3_endpoint_url"])
    assert "X-Amz-Signature=" in url and "token-unused" not in url
    ca = str(bucket.settings["results_s3_ca_bundle"])
    put = httpx.put(url, content=webp(), headers={"Content-Type": "image/webp"}, verify=ca)
    assert put.status_code == 200, put.text
    ref = store.take_upload(lease_id, NOW, lambda raw: raw)
    assert ref is not None
    link = store.result_url(ref, "ignored-image-id", "https://horde.example")
    got = httpx.get(link, verify=ca)
    assert got.status_code == 200 and got.content == webp()


def test_an_unreachable_bucket_is_unavailable_not_missing(
    s3_server: MotoS3Server, s3_trust: None
) -> None:
    server = MotoS3Server(s3_server.tls)
    server.start()
    bucket = new_bucket(server)
    store = store_of(bucket)
    ref = store.put(str(uuid.uuid4()), webp(), NOW)
    server.stop()
    try:
        for action in (
            lambda: store.read(ref),
            lambda: store.put(str(uuid.uuid4()), webp(), NOW),
            lambda: store.delete(ref),
            store.upload_ids,
            lambda: store.take_upload(str(uuid.uuid4()), NOW, lambda raw: raw),
        ):
            with pytest.raises(ResultStoreUnavailable):
                action()
        server.start()  # back on the same port
        assert store.read(ref) == webp(), "nothing was lost"
    finally:
        server.stop()
