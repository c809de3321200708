"""Retention of uploads, on the lease states alone (fakeredis as the store's Redis)."""

from __future__ import annotations

from pathlib import Path

import fakeredis
import pytest

from horde_api.queue.keys import RedisKeys
from horde_api.queue.leases import LeaseState
from horde_api.queue.retention import purge_orphan_uploads
from horde_api.store.results import FilesystemResultStore

ACTIVE, ENDED = "a" * 32, "b" * 32


@pytest.mark.parametrize("decode_responses", [False, True], ids=["bytes", "str"])
def test_an_upload_whose_lease_is_still_active_is_kept_even_past_its_ttl(
    tmp_path: Path, decode_responses: bool
) -> None:
    # The janitor requeues expired leases in passes of bounded size: until it reaches this one,
    # a submit may still take the upload.
    redis = fakeredis.FakeRedis(decode_responses=decode_responses)
    keys = RedisKeys("retention:")
    store = FilesystemResultStore(tmp_path)
    for lease_id, state in ((ACTIVE, LeaseState.ACTIVE), (ENDED, LeaseState.FAULTED)):
        store.put_upload(lease_id, b"RIFF")
        redis.hset(keys.lease(lease_id), mapping={"state": state.value, "expires": 100})
    assert purge_orphan_uploads(redis, keys, store, now=100_000) == 1
    assert store.upload_ids() == {ACTIVE}
