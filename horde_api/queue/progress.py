"""Progress reports of running images (our extension) and the cancel flag they return."""

from __future__ import annotations

from enum import Enum

from redis import Redis

from horde_api.queue.keys import RedisKeys
from horde_api.queue.lua import LuaScript

_PROGRESS_LUA = r"""
-- A.lease: the lease id; A.owner: the reporting worker's user id (text); A.step, A.total
local lid, owner, step, total = A.lease, A.owner, A.step, A.total
local lkey = P .. 'lease:' .. lid
local jid, rid, lease_owner, state =
  unpack(redis.call('HMGET', lkey, 'job', 'req', 'owner', 'state'))
if not jid then return {'notfound'} end
if lease_owner ~= owner then return {'forbidden'} end
-- The worker has the job: its pop reply did arrive.
redis.call('ZREM', P .. 'leases:unsent', lid)
local rstate = redis.call('HGET', P .. 'req:' .. rid, 'state')
if state ~= 'active' or rstate ~= 'active' then return {'cancelled', rid} end
redis.call('HSET', P .. 'req:' .. rid .. ':progress', jid, step .. '/' .. total)
if redis.call('ZSCORE', P .. 'activity', rid) then
  redis.call('ZADD', P .. 'activity', now, rid)
end
publish(rid, 'progress')
return {'running', rid}
"""

PROGRESS_SCRIPT = LuaScript(_PROGRESS_LUA)


class ProgressOutcome(str, Enum):
    RUNNING = "running"
    CANCELLED = "cancelled"  # the request ended or the lease did: the worker may stop
    NOT_FOUND = "notfound"
    FORBIDDEN = "forbidden"


def report_progress(
    redis: Redis,
    keys: RedisKeys,
    lease_id: str,
    owner_id: int,
    step: int,
    total: int,
    now: float,
) -> tuple[ProgressOutcome, str | None]:
    """Record step/total; returns the outcome and the request id."""
    reply = PROGRESS_SCRIPT(
        redis, keys, now, lease=lease_id, owner=str(owner_id), step=min(step, total), total=total
    )
    tag = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
    request_id = None
    if len(reply) > 1:
        request_id = reply[1].decode() if isinstance(reply[1], bytes) else reply[1]
    return ProgressOutcome(tag), request_id


def store_preview(
    redis: Redis, keys: RedisKeys, request_id: str, webp: bytes, keep_seconds: float
) -> None:
    redis.set(keys.request_preview(request_id), webp, ex=max(1, int(keep_seconds)))


def read_preview(redis: Redis, keys: RedisKeys, request_id: str) -> bytes | None:
    value = redis.get(keys.request_preview(request_id))
    return bytes(value) if value is not None else None
