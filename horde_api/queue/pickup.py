"""Leases whose pop reply never reached a worker come back within the pickup window.

A pop commits its leases in Redis and then replies; if the API process dies in between, no
worker has the images, yet their leases would hold them until the ttl runs out (minutes). Every
lease therefore waits in the unsent set until its reply has been sent (or its worker reports
progress, uploads or submits); the janitor puts the images of leases still unsent after
`HORDE_POP_PICKUP_SECONDS` back at the front of their queues. A late submit for such a lease is
`AbortedGen`, as for an expired one, so no image is ever done twice.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis import Redis

from horde_api.queue.keys import RedisKeys
from horde_api.queue.lua import LuaScript

_REQUEUE_UNSENT_LUA = r"""
-- A.cutoff: leases popped before this time and still unsent go back; A.limit: at most this many
local stale = redis.call('ZRANGEBYSCORE', P .. 'leases:unsent', '-inf', A.cutoff,
  'LIMIT', 0, A.limit)
local requeued = 0
for _, lid in ipairs(stale) do
  redis.call('ZREM', P .. 'leases:unsent', lid)
  if redis.call('HGET', P .. 'lease:' .. lid, 'state') == 'active' then
    -- Not the request's fault nor the worker's: no restart is counted.
    requeue_lease(lid, 'unclaimed', false)
    requeued = requeued + 1
  end
end
return requeued
"""

REQUEUE_UNSENT_SCRIPT = LuaScript(_REQUEUE_UNSENT_LUA)


def mark_sent(redis: Redis, keys: RedisKeys, lease_ids: Sequence[str]) -> None:
    """The pop reply carrying these leases has left (or their worker showed it has them)."""
    if lease_ids:
        redis.zrem(keys.unsent_leases, *lease_ids)


def requeue_unsent(
    redis: Redis, keys: RedisKeys, now: float, pickup_seconds: float, limit: int = 200
) -> int:
    """Put back the images of leases whose reply has not left within `pickup_seconds`."""
    return int(REQUEUE_UNSENT_SCRIPT(redis, keys, now, cutoff=now - pickup_seconds, limit=limit))
