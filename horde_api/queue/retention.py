"""Deleting finished requests (their Redis keys, rq jobs and result files) after retention, and
uploads that no submit will ever take."""

from __future__ import annotations

import json
import logging

from redis import Redis

from horde_api.queue.keys import RedisKeys
from horde_api.store.results import ResultStore

log = logging.getLogger(__name__)


def purge_finished_requests(
    redis: Redis,
    keys: RedisKeys,
    store: ResultStore,
    now: float,
    retention_seconds: float,
    limit: int = 100,
) -> int:
    """Remove requests finished more than `retention_seconds` ago. Several processes may run
    this at once: ZREM decides which one purges a given request."""
    due = redis.zrangebyscore(keys.finished, "-inf", now - retention_seconds, start=0, num=limit)
    purged = 0
    for raw in due:
        request_id = raw.decode() if isinstance(raw, bytes) else raw
        if not redis.zrem(keys.finished, request_id):
            continue
        job_ids = [j.decode() for j in redis.lrange(keys.request_jobs(request_id), 0, -1)]
        for record in redis.hvals(keys.request_generations(request_id)):
            ref = json.loads(record).get("ref")
            if ref:
                store.delete(ref)
        with redis.pipeline(transaction=False) as pipe:
            pipe.delete(
                keys.request(request_id),
                keys.request_source(request_id),
                keys.request_jobs(request_id),
                keys.request_generations(request_id),
                keys.request_progress(request_id),
                keys.request_preview(request_id),
            )
            for job_id in job_ids:
                pipe.delete(keys.job(job_id), RedisKeys.rq_job_key(job_id))
            pipe.execute()
        purged += 1
    if purged:
        log.info("purged %d finished requests past retention", purged)
    return purged


# An upload request checks that its lease is active before it reads the body; this much time
# after the lease's end lets such a slow upload finish writing before its file may go.
UPLOAD_GRACE_SECONDS = 60.0


def purge_orphan_uploads(
    redis: Redis, keys: RedisKeys, store: ResultStore, now: float, limit: int = 500
) -> int:
    """Delete uploads (r2_upload PUTs) whose lease can no longer be submitted: a submit takes an
    upload only while its lease is active, so once the lease has ended (submitted without it,
    faulted, expired) and its ttl is over, or the lease is gone from Redis, the file is garbage.
    Idempotent, so several processes may run it at once."""
    lease_ids = sorted(store.upload_ids())[:limit]
    if not lease_ids:
        return 0
    with redis.pipeline(transaction=False) as pipe:
        for lease_id in lease_ids:
            pipe.hmget(keys.lease(lease_id), ["state", "expires"])
        leases = pipe.execute()
    purged = 0
    for lease_id, (state, expires) in zip(lease_ids, leases, strict=True):
        if state is not None:
            active = state == b"active" or state == "active"
            if active or now <= float(expires or 0) + UPLOAD_GRACE_SECONDS:
                continue
        store.delete_upload(lease_id)
        purged += 1
    if purged:
        log.info("deleted %d uploads that were never submitted", purged)
    return purged
