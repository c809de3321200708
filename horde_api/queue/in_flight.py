"""Each requester's count of images in flight (queued or generating), checked against their
concurrency at enqueue, and the repair pass that recomputes every count from the live requests.

The count rises with the request in one transaction (enqueue.py) and falls with each image's
end in the same script that ends it, so it cannot drift; the repair pass is the belt to those
braces: should a count ever disagree with the requests (a Redis restored from an older
snapshot, an operator's hand edit), it is set right within `HORDE_IN_FLIGHT_REPAIR_SECONDS`
instead of refusing the user with 429 for ever.
"""

from __future__ import annotations

from redis import Redis

from horde_api.queue.keys import RedisKeys
from horde_api.queue.lua import LuaScript

_REPAIR_LUA = r"""
-- No arguments of its own. In flight: the waiting and generating images of every unfinished
-- request, plus the cancelled images whose worker has not answered yet.
local totals = {}
local function add(owner, count)
  if owner then totals[owner] = (totals[owner] or 0) + count end
end
for _, rid in ipairs(redis.call('ZRANGE', P .. 'activity', 0, -1)) do
  local owner, waiting, processing =
    unpack(redis.call('HMGET', P .. 'req:' .. rid, 'owner', 'waiting', 'processing'))
  add(owner, num(waiting) + num(processing))
end
for _, lid in ipairs(redis.call('ZRANGE', P .. 'leases', 0, -1)) do
  local state, rid = unpack(redis.call('HMGET', P .. 'lease:' .. lid, 'state', 'req'))
  if state == 'cancelled' and rid then add(redis.call('HGET', P .. 'req:' .. rid, 'owner'), 1) end
end
local repaired = 0
for _, owner in ipairs(redis.call('SMEMBERS', P .. 'inflight-owners')) do
  local key = P .. 'user:' .. owner .. ':inflight'
  local want = totals[owner] or 0
  if num(redis.call('GET', key)) ~= want then repaired = repaired + 1 end
  if want > 0 then
    redis.call('SET', key, want)
  else
    redis.call('DEL', key)
    redis.call('SREM', P .. 'inflight-owners', owner)
  end
end
return repaired
"""

REPAIR_SCRIPT = LuaScript(_REPAIR_LUA)


def repair_in_flight_counts(redis: Redis, keys: RedisKeys, now: float) -> int:
    """Set every requester's in-flight count to what the live requests hold; returns how many
    counts were wrong. Atomic, so enqueues and submits running meanwhile cannot skew it."""
    return int(REPAIR_SCRIPT(redis, keys, now))
