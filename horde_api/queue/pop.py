"""Atomic claim of the best waiting image for a worker (the heart of `POST /generate/pop`).

One Lua script looks at the active queues (a set holding one entry per descriptor with waiting
images), keeps those whose descriptor the worker can serve, inspects at most `lookahead` heads
of each (for the per-image pixel and blacklist checks), picks the highest tier and then the
oldest image, removes it from its rq queue and creates the lease, all in one step: two
concurrent pops can never get the same image, and the cost does not grow with queue depth.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from redis import Redis

from horde_api.queue.descriptors import worker_kinds
from horde_api.queue.keys import RedisKeys
from horde_api.queue.lua import LuaScript
from horde_protocol.ids import new_id

_POP_LUA = r"""
local wid = ARGV[4]
local maxpx = tonumber(ARGV[5])
local kinds = ARGV[6]
local wnsfw = ARGV[7] == '1'
local look = tonumber(ARGV[8])
local lid = ARGV[9]
local token = ARGV[10]
local ttl_min = tonumber(ARGV[11])
local ttl_override = tonumber(ARGV[12])
local keep = tonumber(ARGV[13])
local owner = ARGV[14]
local nm = tonumber(ARGV[15])
local wmodels, wmodel_list = {}, {}
for i = 1, nm do wmodels[ARGV[15 + i]] = true; wmodel_list[i] = ARGV[15 + i] end
local nb = tonumber(ARGV[16 + nm])
local black = {}
for i = 1, nb do black[i] = ARGV[16 + nm + i] end

-- The worker is alive: note it, with what it announced, before looking for work.
local wkey = P .. 'worker:' .. wid
local nf = tonumber(ARGV[17 + nm + nb])
local fields = {}
for i = 1, 2 * nf do fields[i] = ARGV[17 + nm + nb + i] end
redis.call('ZADD', P .. 'workers:seen', now, wid)
redis.call('HSET', wkey, 'last_seen', ARGV[3], unpack(fields))
redis.call('HSETNX', wkey, 'first_seen', ARGV[3])

if redis.call('SISMEMBER', P .. 'workers:maintenance', wid) == 1 then
  return {'maintenance'}
end

local skipped = {}
local function skip(reason, count)
  if count > 0 then skipped[reason] = (skipped[reason] or 0) + count end
end

-- The model this worker would run for a queue's models part, or nil when it serves none.
local function pick_model(part)
  if part == '*' then return wmodel_list[1] or '' end
  if nm == 0 then return string.match(part, '^([^,]*)') end
  for m in string.gmatch(part, '([^,]+)') do
    if wmodels[m] then return m end
  end
  return nil
end

local active_key = P .. 'active-queues'
local best_tier, best_seq, best_queue, best_jid, best_model
for _, queue in ipairs(redis.call('SMEMBERS', active_key)) do
  local tier, floor, kind, qnsfw, part =
    string.match(string.sub(queue, #P + 3), '^(%d+)|(%d+)|(%a)|(%d)|(.*)$')
  tier = tonumber(tier)
  local qkey = 'rq:queue:' .. queue
  if tier and not (best_tier and tier > best_tier) then
    local model = pick_model(part)
    local reason = nil
    if not model then reason = 'models'
    elseif not string.find(kinds, kind, 1, true) then
      if kind == 'i' then reason = 'img2img' else reason = 'painting' end
    elseif qnsfw == '1' and not wnsfw then reason = 'nsfw'
    elseif tonumber(floor) >= maxpx then reason = 'max_pixels' end
    if reason then
      local waiting = redis.call('LLEN', qkey)
      if waiting == 0 then redis.call('SREM', active_key, queue) end
      skip(reason, waiting)
    else
      local heads = redis.call('LRANGE', qkey, 0, look - 1)
      if #heads == 0 then redis.call('SREM', active_key, queue) end
      for _, jid in ipairs(heads) do
        local px, seq, prompt =
          unpack(redis.call('HMGET', P .. 'job:' .. jid, 'px', 'seq', 'prompt'))
        px = num(px)
        seq = num(seq)
        local fits = true
        if px > maxpx then
          skip('max_pixels', 1)
          fits = false
        elseif nb > 0 and prompt then
          for _, word in ipairs(black) do
            if string.find(prompt, word, 1, true) then
              skip('blacklist', 1)
              fits = false
              break
            end
          end
        end
        if fits then
          if not best_tier or tier < best_tier or (tier == best_tier and seq < best_seq) then
            best_tier, best_seq, best_queue, best_jid, best_model = tier, seq, queue, jid, model
          end
          break
        end
      end
    end
  end
end

if not best_jid then
  local reply = {'none'}
  for reason, count in pairs(skipped) do
    reply[#reply + 1] = reason
    reply[#reply + 1] = count
  end
  return reply
end

redis.call('LREM', 'rq:queue:' .. best_queue, 1, best_jid)
local jkey = P .. 'job:' .. best_jid
local rid, steps, px, mpart = unpack(redis.call('HMGET', jkey, 'req', 'steps', 'px', 'model'))
redis.call('HINCRBY', P .. 'queued', mpart, -1)
local ttl
if ttl_override > 0 then
  ttl = ttl_override
else
  ttl = math.max(ttl_min, math.floor(30 + num(steps) * 2 * num(px) / 262144))
end
local expires = now + ttl
local lkey = P .. 'lease:' .. lid
redis.call('HSET', lkey, 'job', best_jid, 'req', rid, 'worker', wid, 'owner', owner,
  'state', 'active',
  'started', ARGV[3], 'expires', tostring(expires), 'token', token, 'model', best_model)
redis.call('EXPIRE', lkey, math.ceil(ttl + keep))
redis.call('ZADD', P .. 'leases', expires, lid)
redis.call('HSET', jkey, 'state', 'leased', 'lease', lid)
redis.call('HSET', RQJ .. best_jid, 'status', 'started')
local rkey = P .. 'req:' .. rid
redis.call('HINCRBY', rkey, 'waiting', -1)
redis.call('HINCRBY', rkey, 'processing', 1)
if redis.call('ZSCORE', P .. 'activity', rid) then
  redis.call('ZADD', P .. 'activity', now, rid)
end
publish(rid, 'popped')
-- Everything the pop reply needs, so the pop costs one round trip.
local spec = redis.call('HGET', rkey, 'spec') or '{}'
local image, mask = unpack(redis.call('HMGET', rkey .. ':src', 'image', 'mask'))
local seed = redis.call('HGET', jkey, 'seed') or '0'
return {'job', best_jid, rid, best_model, tostring(ttl), spec, seed, image or '', mask or ''}
"""

POP_SCRIPT = LuaScript(_POP_LUA)


@dataclass(frozen=True)
class WorkerOffer:
    """What a worker can take, from its pop body."""

    worker_id: str
    owner_id: int
    models: list[str]
    max_pixels: int
    nsfw: bool = False
    blacklist: list[str] = field(default_factory=list)
    allow_img2img: bool = True
    allow_painting: bool = True


@dataclass(frozen=True)
class Claim:
    lease_id: str
    job_id: str
    request_id: str
    model: str
    ttl: float
    upload_token: str
    spec_json: str
    seed: str
    source_image: str | None
    source_mask: str | None


@dataclass(frozen=True)
class NothingFits:
    skipped: dict[str, int]
    maintenance: bool = False


@dataclass(frozen=True)
class LeasePolicy:
    ttl_min_seconds: int = 150
    ttl_override_seconds: float = 0
    keep_seconds: float = 3 * 60 * 60
    lookahead: int = 8


def claim_job(
    redis: Redis,
    keys: RedisKeys,
    offer: WorkerOffer,
    policy: LeasePolicy,
    now: float,
    worker_fields: dict[str, str | int] | None = None,
) -> Claim | NothingFits:
    """Note the worker as alive (with `worker_fields`) and claim the best image that fits."""
    lease_id = new_id()
    token = secrets.token_urlsafe(24)
    blacklist = [w.lower() for w in offer.blacklist if w.strip()]
    args: list[object] = [
        keys.prefix,
        RedisKeys.rq_job_key(""),
        repr(now),
        offer.worker_id,
        offer.max_pixels,
        worker_kinds(offer.allow_img2img, offer.allow_painting),
        int(offer.nsfw),
        policy.lookahead,
        lease_id,
        token,
        policy.ttl_min_seconds,
        repr(float(policy.ttl_override_seconds)),
        int(policy.keep_seconds),
        offer.owner_id,
        len(offer.models),
        *offer.models,
        len(blacklist),
        *blacklist,
        len(worker_fields or {}),
        *[item for pair in (worker_fields or {}).items() for item in pair],
    ]
    reply = POP_SCRIPT(redis, args)
    tag = _text(reply[0])
    if tag == "job":
        return Claim(
            lease_id=lease_id,
            job_id=_text(reply[1]),
            request_id=_text(reply[2]),
            model=_text(reply[3]),
            ttl=float(_text(reply[4])),
            upload_token=token,
            spec_json=_text(reply[5]),
            seed=_text(reply[6]),
            source_image=_text(reply[7]) or None,
            source_mask=_text(reply[8]) or None,
        )
    if tag == "maintenance":
        return NothingFits(skipped={}, maintenance=True)
    flat = reply[1:]
    skipped = {_text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}
    return NothingFits(skipped=skipped)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
