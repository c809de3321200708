"""Reading a request's state, cancelling it, and expiring forgotten ones."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from redis import Redis

from horde_api.queue.descriptors import LAST_BAND, Priority
from horde_api.queue.keys import RedisKeys
from horde_api.queue.lua import LuaScript


class RequestState(str, Enum):
    ACTIVE = "active"
    DONE = "done"
    CANCELLED = "cancelled"
    FAULTED = "faulted"
    EXPIRED = "expired"


_VIEW_LUA = r"""
-- A.request: the request id; A.touch: true to count this read as activity
local rid = A.request
local touch = A.touch
local rkey = P .. 'req:' .. rid
local req = redis.call('HGETALL', rkey)
if #req == 0 then return {} end
local progress = redis.call('HGETALL', rkey .. ':progress')
-- The sequence number (age) of the request's first waiting image, -1 when none waits.
local first_seq = -1
if num(redis.call('HGET', rkey, 'waiting')) > 0 then
  for _, jid in ipairs(redis.call('LRANGE', rkey .. ':jobs', 0, -1)) do
    local state, seq = unpack(redis.call('HMGET', P .. 'job:' .. jid, 'state', 'seq'))
    if state == 'waiting' then
      first_seq = num(seq)
      break
    end
  end
end
if touch and redis.call('ZSCORE', P .. 'activity', rid) then
  redis.call('ZADD', P .. 'activity', now, rid)
end
local stats = redis.call('HGET', P .. 'stats', 'sec_per_mps') or ''
return {req, progress, tostring(first_seq), stats}
"""

_CANCEL_LUA = r"""
-- A.request: the request id
local rid = A.request
local rkey = P .. 'req:' .. rid
if redis.call('EXISTS', rkey) == 0 then return -1 end
if not end_request(rid, 'cancelled') then return 0 end
-- Images being generated: their leases end now, so the request is done at once and nobody
-- else gets them; their requester's slots stay taken until each worker answers (its progress
-- report is told `cancelled`) or the lease's time runs out.
for _, jid in ipairs(redis.call('LRANGE', rkey .. ':jobs', 0, -1)) do
  local jkey = P .. 'job:' .. jid
  local state, lid, queue = unpack(redis.call('HMGET', jkey, 'state', 'lease', 'queue'))
  if state == 'leased' and lid then
    redis.call('HSET', P .. 'lease:' .. lid, 'state', 'cancelled')
    redis.call('ZREM', P .. 'leases:unsent', lid)
    redis.call('HSET', jkey, 'state', 'cancelled')
    rq_not_started(queue, jid, lid)
    rq_ended(queue, jid, 'canceled', '+inf')
    redis.call('HINCRBY', rkey, 'processing', -1)
    redis.call('HDEL', rkey .. ':progress', jid)
  end
end
finalize_if_idle(rid)
return 1
"""

_EXPIRE_LUA = r"""
-- A.cutoff: requests idle since before this time expire; A.limit: at most this many per run
local cutoff = A.cutoff
local limit = A.limit
local stale = redis.call('ZRANGEBYSCORE', P .. 'activity', '-inf', cutoff, 'LIMIT', 0, limit)
local ended = 0
for _, rid in ipairs(stale) do
  if redis.call('EXISTS', P .. 'req:' .. rid) == 0 then
    redis.call('ZREM', P .. 'activity', rid)
  elseif end_request(rid, 'expired') then
    ended = ended + 1
  else
    -- Ended already, still waiting for running images: look again later, not every tick.
    redis.call('ZADD', P .. 'activity', now, rid)
  end
end
return ended
"""

VIEW_SCRIPT = LuaScript(_VIEW_LUA)
CANCEL_SCRIPT = LuaScript(_CANCEL_LUA)
EXPIRE_SCRIPT = LuaScript(_EXPIRE_LUA)


@dataclass
class RequestView:
    request_id: str
    state: RequestState
    owner: str
    n: int
    waiting: int
    processing: int
    finished: int
    restarted: int
    faults: int
    kudos: float  # consumed so far: the activation tax and each finished image's charge
    created: float
    spec: dict[str, Any]
    finished_at: float | None
    progress: dict[str, float] = field(default_factory=dict)
    first_waiting_seq: int = -1  # the age of its first waiting image, -1 when none waits
    priority: Priority = field(default_factory=lambda: Priority(0))
    queue: str = ""
    sec_per_mps: float | None = None

    @property
    def done(self) -> bool:
        return self.finished_at is not None

    @property
    def progress_fraction(self) -> float:
        running = sum(self.progress.values())
        return max(0.0, min(1.0, (self.finished + running) / max(1, self.n)))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(flat: list[Any]) -> dict[str, str]:
    return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}


def view_request(
    redis: Redis, keys: RedisKeys, request_id: str, now: float, touch: bool = True
) -> RequestView | None:
    """One round trip: the request's counters, progress of running images, the age of its first
    waiting image (for its queue position, queue_positions.py)."""
    reply = VIEW_SCRIPT(redis, keys, now, request=request_id, touch=touch)
    if not reply:
        return None
    fields = _pairs(reply[0])
    progress = {}
    for job_id, value in _pairs(reply[1]).items():
        step, _, total = value.partition("/")
        try:
            progress[job_id] = min(1.0, int(step) / max(1, int(total)))
        except ValueError:
            continue
    stats = _text(reply[3])
    return RequestView(
        request_id=request_id,
        state=RequestState(fields.get("state", "active")),
        owner=fields.get("owner", ""),
        n=int(fields.get("n", 0)),
        waiting=int(fields.get("waiting", 0)),
        processing=int(fields.get("processing", 0)),
        finished=int(fields.get("finished", 0)),
        restarted=int(fields.get("restarted", 0)),
        faults=int(fields.get("faults", 0)),
        kudos=int(fields.get("consumed_c", 0)) / 100,
        created=float(fields.get("created", 0)),
        spec=json.loads(fields.get("spec", "{}")),
        finished_at=float(fields["finished_at"]) if "finished_at" in fields else None,
        progress=progress,
        first_waiting_seq=int(float(_text(reply[2]))),
        priority=Priority(int(fields.get("tier", 0)), int(fields.get("band", LAST_BAND))),
        queue=fields.get("queue", ""),
        sec_per_mps=float(stats) if stats else None,
    )


def cancel_request(redis: Redis, keys: RedisKeys, request_id: str, now: float) -> bool | None:
    """Cancel: waiting images leave their queues now. None when the request is unknown,
    False when it had already ended."""
    result = int(CANCEL_SCRIPT(redis, keys, now, request=request_id))
    if result < 0:
        return None
    return result == 1


def expire_stale_requests(
    redis: Redis, keys: RedisKeys, now: float, expiry_seconds: float, limit: int = 200
) -> int:
    return int(EXPIRE_SCRIPT(redis, keys, now, cutoff=now - expiry_seconds, limit=limit))


def generation_records(redis: Redis, keys: RedisKeys, request_id: str) -> list[dict[str, Any]]:
    """Stored results of a request, in image order."""
    records = [json.loads(v) for v in redis.hvals(keys.request_generations(request_id))]
    records.sort(key=lambda r: r.get("index", 0))
    return records
