"""Lua shared by the queue's atomic scripts, and a small loader that runs them by SHA.

Every state change of a request or image happens inside one Lua script, so several API
processes (and their janitors) can act on the same request without locks: Redis runs one
script at a time. Scripts address keys they compute from the prefixes they are given; this
needs a single Redis server (not Redis Cluster), which is what the horde supports.

Every script gets the same five arguments, named in COMMON_LUA's header; its own arguments
travel as one JSON object (`A` in the script), whose fields each script's header names. No
script reads a positional argument of its own or spells a key prefix.
"""

from __future__ import annotations

import json
from typing import Any

from redis import Redis
from redis.commands.core import Script

from horde_api.queue.keys import RedisKeys

COMMON_LUA = r"""
-- ARGV[1] P    our key prefix: every key of ours starts with it
-- ARGV[2] RQJ  rq's job-key prefix (rq:job:)
-- ARGV[3] RQQ  rq's queue-key prefix (rq:queue:)
-- ARGV[4] now  the caller's clock in seconds (passed in, so tests can move time)
-- ARGV[5] A    the script's own arguments: one JSON object, named in the script's header
local P, RQJ, RQQ = ARGV[1], ARGV[2], ARGV[3]
local now = tonumber(ARGV[4])
local A = cjson.decode(ARGV[5])

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

-- What waits per model part: images (`queued`) and megapixel-steps (`queued-mps`).
local function count_waiting(model, images, mps)
  redis.call('HINCRBY', P .. 'queued', model, images)
  redis.call('HINCRBYFLOAT', P .. 'queued-mps', model, images * num(mps))
end

local function push_waiting(jid, at_front)
  local jkey = P .. 'job:' .. jid
  local queue, model, mps = unpack(redis.call('HMGET', jkey, 'queue', 'model', 'mps'))
  if at_front then
    redis.call('LPUSH', RQQ .. queue, jid)
  else
    redis.call('RPUSH', RQQ .. queue, jid)
  end
  redis.call('SADD', P .. 'active-queues', queue)
  count_waiting(model, 1, mps)
  redis.call('HSET', jkey, 'state', 'waiting', 'lease', '')
  redis.call('HSET', RQJ .. jid, 'status', 'queued')
end

-- Take a waiting image out of its queue for good (cancel, expiry, request faulted).
local function drop_waiting(jid, rid)
  local jkey = P .. 'job:' .. jid
  local queue, model, mps = unpack(redis.call('HMGET', jkey, 'queue', 'model', 'mps'))
  if redis.call('LREM', RQQ .. queue, 1, jid) > 0 then
    count_waiting(model, -1, mps)
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
  redis.call('ZREM', P .. 'leases:unsent', lid)
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

    def __call__(self, redis: Redis, keys: RedisKeys, now: float, **args: Any) -> Any:
        """Run with the common arguments and `args` as the script's JSON object `A`."""
        script = self._scripts.get(id(redis))
        if script is None:
            script = redis.register_script(self.source)
            self._scripts[id(redis)] = script
        common = [keys.prefix, RedisKeys.rq_job_key(""), RedisKeys.rq_queue_key(""), repr(now)]
        return script(keys=[], args=[*common, json.dumps(args, separators=(",", ":"))])
