"""Deleting finished requests (their Redis keys, rq jobs and result files) after retention, and
uploads that no submit will ever take."""

from __future__ import annotations

import json
import logging

from redis import Redis
from rq.queue import Queue
from rq.registry import CanceledJobRegistry, FailedJobRegistry, FinishedJobRegistry

from horde_api.queue.keys import RedisKeys
from horde_api.queue.leases import LeaseState
from horde_api.queue.lua import LuaScript
from horde_api.store.results import ResultStore, ResultStoreUnavailable

log = logging.getLogger(__name__)
RQ_END_REGISTRIES = (FinishedJobRegistry, FailedJobRegistry, CanceledJobRegistry)


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
    due = redis.zrangebyscore(
        keys.finished, "-inf", now - retention_seconds, start=0, num=limit, withscores=True
    )
    purged = 0
    for raw, finished_at in due:
        request_id = raw.decode() if isinstance(raw, bytes) else raw
        if not redis.zrem(keys.finished, request_id):
            continue
        job_ids = [j.decode() for j in redis.lrange(keys.request_jobs(request_id), 0, -1)]
        with redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hget(keys.job(job_id), "queue")
            queues = [q.decode() if q else "" for q in pipe.execute()]
        try:
            for record in redis.hvals(keys.request_generations(request_id)):
                ref = json.loads(record).get("ref")
                if ref:
                    store.delete(ref)
        except ResultStoreUnavailable:
            # Its keys stay, and so does its place among the finished: a later pass deletes the
            # images (deleting twice is harmless) and then the keys. Nothing is forgotten.
            redis.zadd(keys.finished, {request_id: finished_at})
            log.warning("result storage unreachable: purging finished requests waits")
            break
        with redis.pipeline(transaction=False) as pipe:
            pipe.delete(
                keys.request(request_id),
                keys.request_source(request_id),
                keys.request_jobs(request_id),
                keys.request_generations(request_id),
                keys.request_progress(request_id),
                keys.request_preview(request_id),
            )
            for job_id, queue in zip(job_ids, queues, strict=True):
                pipe.delete(keys.job(job_id), RedisKeys.rq_job_key(job_id))
                if queue:
                    # rq's registries of finished, failed and cancelled images forget it too.
                    for registry in RQ_END_REGISTRIES:
                        pipe.zrem(registry.key_template.format(queue), job_id)
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
    try:
        lease_ids = sorted(store.upload_ids())[:limit]
    except ResultStoreUnavailable:
        log.warning("result storage unreachable: abandoned uploads wait for a later pass")
        return 0
    if not lease_ids:
        return 0
    with redis.pipeline(transaction=False) as pipe:
        for lease_id in lease_ids:
            pipe.hmget(keys.lease(lease_id), ["state", "expires"])
        leases = pipe.execute()
    purged = 0
    for lease_id, (state, expires) in zip(lease_ids, leases, strict=True):
        if state is not None:
            text = state.decode() if isinstance(state, bytes) else state
            if text == LeaseState.ACTIVE or now <= float(expires or 0) + UPLOAD_GRACE_SECONDS:
                continue
        try:
            store.delete_upload(lease_id)
        except ResultStoreUnavailable:
            log.warning("result storage unreachable: abandoned uploads wait for a later pass")
            break
        purged += 1
    if purged:
        log.info("deleted %d uploads that were never submitted", purged)
    return purged


_FORGET_EMPTY_QUEUES_LUA = r"""
-- A.names: rq queue names of ours to look at. A queue with no waiting, running, finished,
-- failed or cancelled image leaves rq's set of queues (`rq:queues`), so `rq info` lists only
-- queues with something in them and the set does not grow with every kind of request ever made.
local forgotten = 0
for _, name in ipairs(A.names) do
  local empty = redis.call('LLEN', RQQ .. name) == 0
  for _, registry in ipairs({RQ.started, RQ.finished, RQ.failed, RQ.canceled}) do
    empty = empty and redis.call('ZCARD', registry .. name) == 0
  end
  if empty then
    redis.call('SREM', A.all_queues, RQQ .. name)
    redis.call('SREM', P .. 'active-queues', name)
    forgotten = forgotten + 1
  end
end
return forgotten
"""

FORGET_EMPTY_QUEUES_SCRIPT = LuaScript(_FORGET_EMPTY_QUEUES_LUA)


def forget_empty_queues(redis: Redis, keys: RedisKeys, now: float) -> int:
    """Drop our queues that hold nothing from rq's queue set (they come back with their next
    image: rq's enqueue adds the queue again)."""
    all_queues = Queue.redis_queues_keys
    ours = RedisKeys.rq_queue_key(keys.rq_queue_name("")).encode()
    cut = len(RedisKeys.rq_queue_key(""))
    names = [key[cut:].decode() for key in redis.smembers(all_queues) if key.startswith(ours)]
    if not names:
        return 0
    return int(FORGET_EMPTY_QUEUES_SCRIPT(redis, keys, now, names=names, all_queues=all_queues))
