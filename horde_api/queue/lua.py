"""Lua shared by the queue's atomic scripts, and a small loader that runs them by SHA.

Every state change of a request or image happens inside one Lua script, so several API
processes (and their janitors) can act on the same request without locks: Redis runs one
script at a time. Scripts address keys they compute from the prefix (ARGV[1]); this needs a
single Redis server (not Redis Cluster), which is what the horde supports.

Conventions of the shared functions: `P` is our prefix, `RQJ` rq's job-key prefix, `now` the
caller's clock in seconds (passed in, so tests can move time).
"""

from __future__ import annotations

from typing import Any

from redis import Redis
from redis.commands.core import Script

COMMON_LUA = r"""
local P = ARGV[1]
local RQJ = ARGV[2]
local now = tonumber(ARGV[3])

local function num(v) return tonumber(v) or 0 end

local function publish(rid, what)
  redis.call('PUBLISH', P .. 'ev:' .. rid, what)
end

-- A request leaves the active set once nothing of it waits or runs; exactly once.
local function finalize_if_idle(rid)
  local rkey = P .. 'req:' .. rid
  local w, p = unpack(redis.call('HMGET', rkey, 'waiting', 'processing'))
  if num(w) == 0 and num(p) == 0 then
    if redis.call('HSETNX', rkey, 'finished_at', now) == 1 then
      if redis.call('HGET', rkey, 'state') == 'active' then
        redis.call('HSET', rkey, 'state', 'done')
      end
      redis.call('ZREM', P .. 'activity', rid)
      redis.call('ZADD', P .. 'finished', now, rid)
    end
  end
end

local function release_in_flight(rid, count)
  local owner = redis.call('HGET', P .. 'req:' .. rid, 'owner')
  if owner then
    local key = P .. 'user:' .. owner .. ':inflight'
    if redis.call('DECRBY', key, count) < 0 then redis.call('SET', key, 0) end
  end
end

local function push_waiting(jid, at_front)
  local jkey = P .. 'job:' .. jid
  local queue, model = unpack(redis.call('HMGET', jkey, 'queue', 'model'))
  if at_front then
    redis.call('LPUSH', 'rq:queue:' .. queue, jid)
  else
    redis.call('RPUSH', 'rq:queue:' .. queue, jid)
  end
  redis.call('SADD', P .. 'active-queues', queue)
  redis.call('HINCRBY', P .. 'queued', model, 1)
  redis.call('HSET', jkey, 'state', 'waiting', 'lease', '')
  redis.call('HSET', RQJ .. jid, 'status', 'queued')
end

-- Take a waiting image out of its queue for good (cancel, expiry, request faulted).
local function drop_waiting(jid, rid)
  local jkey = P .. 'job:' .. jid
  local queue, model = unpack(redis.call('HMGET', jkey, 'queue', 'model'))
  if redis.call('LREM', 'rq:queue:' .. queue, 1, jid) > 0 then
    redis.call('HINCRBY', P .. 'queued', model, -1)
  end
  redis.call('HSET', jkey, 'state', 'cancelled')
  redis.call('HSET', RQJ .. jid, 'status', 'canceled')
  redis.call('HINCRBY', P .. 'req:' .. rid, 'waiting', -1)
  release_in_flight(rid, 1)
end

-- End a request early (cancel, expiry, too many faults): waiting images leave their queues at
-- once; images being generated finish or time out on their own.
local function end_request(rid, reason)
  local rkey = P .. 'req:' .. rid
  if redis.call('HGET', rkey, 'state') ~= 'active' then return false end
  redis.call('HSET', rkey, 'state', reason)
  for _, jid in ipairs(redis.call('LRANGE', rkey .. ':jobs', 0, -1)) do
    if redis.call('HGET', P .. 'job:' .. jid, 'state') == 'waiting' then
      drop_waiting(jid, rid)
    end
  end
  finalize_if_idle(rid)
  publish(rid, reason)
  return true
end

-- A lease ends without a result (expired, faulted): the image goes back to the FRONT of its
-- queue if its request still wants it, else it is dropped.
local function requeue_lease(lid, lease_state, restarted)
  local lkey = P .. 'lease:' .. lid
  local jid, rid = unpack(redis.call('HMGET', lkey, 'job', 'req'))
  if not jid then return nil end
  redis.call('HSET', lkey, 'state', lease_state)
  redis.call('ZREM', P .. 'leases', lid)
  local rkey = P .. 'req:' .. rid
  redis.call('HINCRBY', rkey, 'processing', -1)
  redis.call('HDEL', P .. 'req:' .. rid .. ':progress', jid)
  if redis.call('HGET', rkey, 'state') == 'active' then
    redis.call('HINCRBY', rkey, 'waiting', 1)
    if restarted then redis.call('HINCRBY', rkey, 'restarted', 1) end
    push_waiting(jid, true)
  else
    redis.call('HSET', P .. 'job:' .. jid, 'state', 'cancelled', 'lease', '')
    redis.call('HSET', RQJ .. jid, 'status', 'canceled')
    release_in_flight(rid, 1)
    finalize_if_idle(rid)
  end
  publish(rid, 'requeued')
  return rid
end
"""


class LuaScript:
    """A Lua script (COMMON_LUA + body) registered once per Redis client, run by EVALSHA."""

    def __init__(self, body: str) -> None:
        self.source = COMMON_LUA + body
        self._scripts: dict[int, Script] = {}

    def __call__(self, redis: Redis, args: list[Any]) -> Any:
        script = self._scripts.get(id(redis))
        if script is None:
            script = redis.register_script(self.source)
            self._scripts[id(redis)] = script
        return script(keys=[], args=args)
