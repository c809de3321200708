"""Lua shared by the queue's atomic scripts, and a small loader that runs them by SHA.

Every state change of a request or image happens inside one Lua script, so several API
processes (and their janitors) can act on the same request without locks: Redis runs one
script at a time. Scripts address keys they compute from the prefixes they are given; this
needs a single Redis server (not Redis Cluster), which is what the horde supports.

Every script gets the same four arguments, named in COMMON_LUA's header; its own arguments
travel as one JSON object (`A` in the script), whose fields each script's header names. No
script reads a positional argument of its own or spells a key prefix: rq's prefixes come from
rq's own classes (`RQ_PREFIXES`).
"""

from __future__ import annotations

import json
from typing import Any

from redis import Redis
from redis.commands.core import Script
from rq.registry import (
    CanceledJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    StartedJobRegistry,
)

from horde_api.queue.keys import RedisKeys

RQ_PREFIXES = json.dumps(
    {
        "job": RedisKeys.rq_job_key(""),
        "queue": RedisKeys.rq_queue_key(""),
        "started": StartedJobRegistry.key_template.format(""),
        "finished": FinishedJobRegistry.key_template.format(""),
        "failed": FailedJobRegistry.key_template.format(""),
        "canceled": CanceledJobRegistry.key_template.format(""),
    }
)

COMMON_LUA = r"""
-- ARGV[1] P    our key prefix: every key of ours starts with it
-- ARGV[2] RQ   rq's key prefixes, JSON: job, queue, and its registries started, finished,
--              failed, canceled (each followed by a queue name)
-- ARGV[3] now  the caller's clock in seconds (passed in, so tests can move time)
-- ARGV[4] A    the script's own arguments: one JSON object, named in the script's header
local P = ARGV[1]
local RQ = cjson.decode(ARGV[2])
local RQJ, RQQ = RQ.job, RQ.queue
local now = tonumber(ARGV[3])
local A = cjson.decode(ARGV[4])

local function num(v) return tonumber(v) or 0 end

local function publish(rid, what)
  redis.call('PUBLISH', P .. 'ev:' .. rid, what)
end

-- rq's own view of an image (its job hash's status and rq's registries), so that `rq info`
-- and rq-dashboard count waiting, running, finished, failed and cancelled images truly.
-- A running image is in the started registry as "<job id>:<lease id>" (rq's job:execution);
-- its score is +inf so that rq's own cleanup never fails it: leases end through our scripts.
local function rq_started(queue, jid, lid)
  redis.call('HSET', RQJ .. jid, 'status', 'started')
  redis.call('ZADD', RQ.started .. queue, '+inf', jid .. ':' .. lid)
end

local function rq_not_started(queue, jid, lid)
  redis.call('ZREM', RQ.started .. queue, jid .. ':' .. lid)
end

-- `final`: finished, failed or canceled; kept in that registry until `keep_until`.
local function rq_ended(queue, jid, final, keep_until)
  redis.call('HSET', RQJ .. jid, 'status', final)
  redis.call('ZADD', RQ[final] .. queue, keep_until, jid)
end

-- What waits per model part: images (`queued`) and megapixel-steps (`queued-mps`); a part
-- whose count reaches zero leaves both hashes, so they hold only what waits.
local function count_waiting(model, images, mps)
  local left = redis.call('HINCRBY', P .. 'queued', model, images)
  if left <= 0 then
    redis.call('HDEL', P .. 'queued', model)
    redis.call('HDEL', P .. 'queued-mps', model)
  else
    redis.call('HINCRBYFLOAT', P .. 'queued-mps', model, images * num(mps))
  end
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
  local queue, model, mps, seq = unpack(redis.call('HMGET', jkey, 'queue', 'model', 'mps', 'seq'))
  redis.call('ZADD', P .. 'waiting:' .. queue, num(seq), jid)
  if at_front then
    redis.call('LPUSH', RQQ .. queue, jid)
  else
    redis.call('RPUSH', RQQ .. queue, jid)
  end
  redis.call('SADD', P .. 'active-queues', queue)
  -- Wakes pops held waiting for a job (horde_api/pop_long_poll.py), on every API process.
  redis.call('PUBLISH', P .. 'jobs-queued', queue)
  count_waiting(model, 1, mps)
  redis.call('HSET', jkey, 'state', 'waiting', 'lease', '')
  redis.call('HSET', RQJ .. jid, 'status', 'queued')
end

-- How an image that will not be generated ends in rq: cancelled by its requester, or failed
-- with its request (too many faults, expired).
local function rq_final_of(request_state)
  if request_state == 'cancelled' then return 'canceled' end
  return 'failed'
end

-- Take a waiting image out of its queue for good (cancel, expiry, request faulted).
local function drop_waiting(jid, rid, final)
  local jkey = P .. 'job:' .. jid
  local queue, model, mps = unpack(redis.call('HMGET', jkey, 'queue', 'model', 'mps'))
  if redis.call('LREM', RQQ .. queue, 1, jid) > 0 then
    count_waiting(model, -1, mps)
  end
  redis.call('ZREM', P .. 'waiting:' .. queue, jid)
  redis.call('HSET', jkey, 'state', 'cancelled')
  rq_ended(queue, jid, final, '+inf')
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
      drop_waiting(jid, rid, rq_final_of(reason))
    end
  end
  finalize_if_idle(rid)
  publish(rid, reason)
  return true
end

-- A lease ends without a result (expired, faulted, unsent): the image goes back to the FRONT of
-- its queue if its request still wants it, else it is dropped. `restarted`: it counts as a
-- restart of the image (the calling script passes A.max_faults).
local function requeue_lease(lid, lease_state, restarted)
  local lkey = P .. 'lease:' .. lid
  local jid, rid = unpack(redis.call('HMGET', lkey, 'job', 'req'))
  if not jid then return nil end
  redis.call('HSET', lkey, 'state', lease_state)
  redis.call('ZREM', P .. 'leases', lid)
  redis.call('ZREM', P .. 'leases:unsent', lid)
  local queue = redis.call('HGET', P .. 'job:' .. jid, 'queue')
  rq_not_started(queue, jid, lid)
  local rkey = P .. 'req:' .. rid
  redis.call('HINCRBY', rkey, 'processing', -1)
  redis.call('HDEL', P .. 'req:' .. rid .. ':progress', jid)
  local request_state = redis.call('HGET', rkey, 'state')
  if request_state == 'active' then
    redis.call('HINCRBY', rkey, 'waiting', 1)
    push_waiting(jid, true)
    if restarted then
      -- An expired lease or a faulted submit: after the public horde's limit the request
      -- fails instead of returning to the queue for ever (A.max_faults of the calling script).
      redis.call('HINCRBY', rkey, 'restarted', 1)
      if redis.call('HINCRBY', rkey, 'faults', 1) > A.max_faults then
        end_request(rid, 'faulted')
      end
    end
  else
    redis.call('HSET', P .. 'job:' .. jid, 'state', 'cancelled', 'lease', '')
    rq_ended(queue, jid, rq_final_of(request_state), '+inf')
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
        common = [keys.prefix, RQ_PREFIXES, repr(now)]
        return script(keys=[], args=[*common, json.dumps(args, separators=(",", ":"))])
