"""Atomic claim of the best waiting images for a worker (the heart of `POST /generate/pop`).

One Lua script looks at the active queues (a set holding one entry per descriptor with waiting
images), keeps those whose descriptor the worker can serve, inspects at most `lookahead` heads
of each (for the per-image checks: pixels, blacklist, steps, targeting), picks the highest tier
and then the oldest image, takes it out of its rq queue with up to `amount - 1` more images of
the same request (the public horde's batching) and creates one lease per image, all in one
step: two concurrent pops can never get the same image, and the cost does not grow with queue
depth.

The checks and their `skipped` reasons follow the public horde's matcher (docs/protocol.md,
"Which worker gets a job").
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from redis import Redis

from horde_api.kudos.uptime import UPTIME_REWARD_EVERY_SECONDS
from horde_api.queue.descriptors import LAST_BAND, SKIP_REASON_OF_LETTER, worker_kinds
from horde_api.queue.keys import RedisKeys
from horde_api.queue.lua import LuaScript
from horde_api.queue.wants import offered
from horde_protocol.ids import new_id

_POP_LUA = r"""
-- A.worker        the worker's id
-- A.owner         its owner's user id (text; a job's `owner` field holds its requester's)
-- A.trusted       its owner is trusted (requests with trusted_workers need that)
-- A.maxpx         max_pixels
-- A.kinds         kinds it takes: t txt2img, i img2img, p inpainting/outpainting
-- A.nsfw          it takes NSFW requests
-- A.serves        need letters it serves (see descriptors.Need)
-- A.skip_of       need letter -> skipped reason
-- A.models        model names it serves (array; empty = it names none)
-- A.blacklist     lower-case words it refuses in prompts (array)
-- A.step_limit    0, or the accurate steps above which it refuses an image (limit_max_steps)
-- A.upfront       require_upfront_kudos: only images of trusted requesters, its owner's, or of
--                 requesters whose balance covered the image's price
-- A.old_band      the kudos band of queues named before bands existed
-- A.uptime        {reward = kudos cents per 10 minutes online, every = 600, offline = seconds
--                 of silence after which it was offline, owner = its owner's user id (number)}
-- A.xslow         extra_slow_worker: only images whose request allows extra-slow workers
-- A.min_speed     the speed a request with slow_workers=false needs
-- A.look          heads looked at per queue
-- A.leases        one new lease id per image it may take (so #A.leases is its `amount`)
-- A.tokens        one upload token per lease
-- A.ttl_min, A.ttl_override, A.keep   lease timing: shortest ttl, fixed ttl (0 = computed),
--                 how long a lease's record outlives it
-- A.fields        what the worker announced, recorded on its hash (text values)
-- A.nonce         '' or the worker's pop nonce: a pop repeated with it gets the same images,
--                 their leases renewed
-- A.pp, A.cn, A.cm, A.lo, A.ti  the post-processors, ControlNet types, control types whose map
--                 it computes, LoRA and textual inversion names (lower case) it has: arrays,
--                 or '*' when it listed none (= any); checked against an image's `wants`
--                 (see queue/wants.py)

-- The worker is alive: note it, with what it announced, before looking for work.
local wid = A.worker
local wkey = P .. 'worker:' .. wid
local fields = {}
for name, value in pairs(A.fields) do
  fields[#fields + 1] = name
  fields[#fields + 1] = value
end
local previous = tonumber(redis.call('HGET', wkey, 'last_seen'))
redis.call('ZADD', P .. 'workers:seen', now, wid)
redis.call('HSET', wkey, 'last_seen', tostring(now), unpack(fields))
redis.call('HSETNX', wkey, 'first_seen', tostring(now))
-- Its speed in megapixel-steps per second, measured by submits (nil until its first one).
local speed = tonumber(redis.call('HGET', wkey, 'mps'))
-- A worker in maintenance only serves its owner's own requests, as on the public horde.
local maintenance = redis.call('SISMEMBER', P .. 'workers:maintenance', wid) == 1

-- Uptime rewards, as on the public horde: the time between two pops less than
-- A.uptime.offline apart counts as online (not in maintenance); every A.uptime.every seconds of
-- it earn its owner A.uptime.reward. After an absence the count of the next reward restarts.
if previous and now > previous then
  if now - previous < A.uptime.offline and not maintenance then
    local uptime = tonumber(redis.call('HINCRBYFLOAT', wkey, 'uptime', now - previous))
    if uptime - num(redis.call('HGET', wkey, 'uptime_rewarded')) >= A.uptime.every then
      redis.call('HSET', wkey, 'uptime_rewarded', tostring(uptime))
      local tick = redis.call('HINCRBY', wkey, 'uptime_ticks', 1)
      redis.call('RPUSH', P .. 'kudos:events', cjson.encode({
        event_id = 'uptime:' .. wid .. ':' .. tick, user_id = A.uptime.owner,
        cents = A.uptime.reward, kind = 'accumulated', worker_id = wid,
        worker_kind = 'uptime'}))
    end
  else
    redis.call('HSET', wkey, 'uptime_rewarded', redis.call('HGET', wkey, 'uptime') or '0')
  end
end

-- The reply for leased images ({lease id, job id, upload token} each) of request `rid`. Each
-- lease waits in the unsent set until its reply has left (or its worker shows it has the job).
local function job_reply(rid, model, ttl, images)
  local rkey = P .. 'req:' .. rid
  local image, mask = unpack(redis.call('HMGET', rkey .. ':src', 'image', 'mask'))
  local reply = {'job', rid, model, tostring(ttl), redis.call('HGET', rkey, 'spec') or '{}',
    image or '', mask or ''}
  for _, leased in ipairs(images) do
    local lid, jid, token = leased[1], leased[2], leased[3]
    redis.call('ZADD', P .. 'leases:unsent', now, lid)
    reply[#reply + 1] = lid
    reply[#reply + 1] = jid
    reply[#reply + 1] = redis.call('HGET', P .. 'job:' .. jid, 'seed') or '0'
    reply[#reply + 1] = token
  end
  return reply
end

-- A pop repeated with the nonce of an earlier one (whose reply was lost) gets that pop's images
-- back while their leases are alive, instead of new ones. The worker learns of its job only now,
-- so the leases run their whole ttl again from now; but never past twice their ttl from the
-- first pop, so that repeating a nonce cannot hold images for ever.
local nonce_key = nil
if A.nonce ~= '' then
  nonce_key = P .. 'pop-nonce:' .. wid .. ':' .. A.nonce
  local prior = redis.call('GET', nonce_key)
  if prior then
    local again, rid, model, expires = {}, nil, nil, 0
    for _, lid in ipairs(cjson.decode(prior)) do
      local lkey = P .. 'lease:' .. lid
      local jid, lrid, state, lexpires, lmodel, token, started, lttl = unpack(redis.call('HMGET',
        lkey, 'job', 'req', 'state', 'expires', 'model', 'token', 'started', 'ttl'))
      lexpires = num(lexpires)
      if state == 'active' and lexpires > now then
        -- Leases granted before the `ttl` field existed: their ttl is their first expiry.
        lttl = tonumber(lttl) or (lexpires - num(started))
        local renewed = math.min(now + lttl, num(started) + 2 * lttl)
        if renewed > lexpires then
          lexpires = renewed
          redis.call('HSET', lkey, 'expires', tostring(renewed), 'ttl', tostring(lttl))
          redis.call('ZADD', P .. 'leases', renewed, lid)
          redis.call('EXPIRE', lkey, math.ceil(renewed - now + A.keep))
        end
        again[#again + 1] = {lid, jid, token}
        rid, model, expires = lrid, lmodel, lexpires
      end
    end
    if #again > 0 then
      redis.call('EXPIRE', nonce_key, math.ceil(expires - now))
      return job_reply(rid, model, math.max(1, math.floor(expires - now)), again)
    end
  end
end

local skipped = {}
local function skip(reason, count)
  if count > 0 then skipped[reason] = (skipped[reason] or 0) + count end
end

local wmodels = {}
for _, m in ipairs(A.models) do wmodels[m] = true end

local function set_of(list)
  if list == '*' then return '*' end
  local set = {}
  for _, item in ipairs(list) do set[item] = true end
  return set
end
local have = {pp = set_of(A.pp), cn = set_of(A.cn), cm = set_of(A.cm), lo = set_of(A.lo),
  ti = set_of(A.ti)}
local function lacks(set, names)
  if set == '*' then return false end
  for _, name in ipairs(names) do
    if not set[name] then return true end
  end
  return false
end

-- Why the worker lacks something this image's `wants` names, or nil.
local function wants_misfit(wants)
  local w = cjson.decode(wants)
  if w.pp and lacks(have.pp, w.pp) then return 'post-processing' end
  if w.cn and lacks(have.cn, {w.cn}) then return 'controlnet' end
  if w.cm and lacks(have.cm, {w.cn}) then return 'controlnet' end
  if w.lo and lacks(have.lo, w.lo) then return 'lora' end
  if w.ti and lacks(have.ti, w.ti) then return 'lora' end
  return nil
end

-- Workers announce models; only announced names get queues of their own (descriptors.py).
if #A.models > 0 then redis.call('SADD', P .. 'models:known', unpack(A.models)) end

-- The model this worker would run for a list of names (comma-joined), or nil if it serves none.
local function pick_model(names)
  if #A.models == 0 then return string.match(names, '^([^,]*)') end
  for m in string.gmatch(names, '([^,]+)') do
    if wmodels[m] then return m end
  end
  return nil
end

-- The model for a queue's models part: '*' any, '+' decided image by image, else its one name.
local function queue_model(part)
  if part == '*' then return A.models[1] or '' end
  if part == '+' then return '+' end
  return pick_model(part)
end

-- Why the worker cannot take any image of a queue, or nil.
local function queue_misfit(kind, flags, floor, model)
  if not model then return 'models' end
  if not string.find(A.kinds, kind, 1, true) then
    if kind == 'i' then return 'img2img' end
    return 'painting'
  end
  if string.sub(flags, 1, 1) == '1' and not A.nsfw then return 'nsfw' end
  for need in string.gmatch(string.sub(flags, 2), '%a') do
    if not string.find(A.serves, need, 1, true) then return A.skip_of[need] or 'models' end
  end
  if tonumber(floor) >= A.maxpx then return 'max_pixels' end
  return nil
end

local function listed(list, value)
  for _, item in ipairs(list) do
    if item == value then return true end
  end
  return false
end

-- Why the worker cannot take this image (nil if it can), and the model it would run: `model`
-- is its queue's, or '+' for the shared queue, whose images carry their model names.
local function image_misfit(jid, tier, model)
  local px, prompt, asteps, owner, route, names, wants, bal, price = unpack(redis.call('HMGET',
    P .. 'job:' .. jid, 'px', 'prompt', 'asteps', 'owner', 'route', 'models', 'wants', 'bal',
    'price'))
  if model == '+' then
    model = pick_model(names or '')
    if not model then return 'models' end
  end
  local own = owner == A.owner
  if maintenance and not own then return 'maintenance' end
  if num(px) > A.maxpx then return 'max_pixels' end
  if prompt then
    for _, word in ipairs(A.blacklist) do
      if string.find(prompt, word, 1, true) then return 'blacklist' end
    end
  end
  if A.step_limit > 0 and num(asteps) > A.step_limit then return 'step_count' end
  if A.upfront and tier ~= 0 and not own and num(bal) < num(price) then return 'kudos' end
  local r = {}
  if route then r = cjson.decode(route) end
  if r.wl and listed(r.wl, wid) == (r.wlb == true) then return 'worker_id' end
  if r.tw and not A.trusted then return 'untrusted' end
  if r.fast and speed and speed < A.min_speed then return 'performance' end
  if A.xslow and not r.xslow then return 'performance' end
  if wants then
    local lacking = wants_misfit(wants)
    if lacking then return lacking end
  end
  return nil, model
end

local active_key = P .. 'active-queues'
-- Priority: the tier, then the kudos band (a lower one first); then the oldest image.
local function before(tier, band, seq, other_tier, other_band, other_seq)
  if not other_tier then return true end
  if tier ~= other_tier then return tier < other_tier end
  if band ~= other_band then return band < other_band end
  return seq < other_seq
end

local best_tier, best_band, best_seq, best_queue, best_jid, best_model
for _, queue in ipairs(redis.call('SMEMBERS', active_key)) do
  local tier, band, floor, kind, flags, part =
    string.match(string.sub(queue, #P + 3), '^(%d+)%.?(%d*)|(%d+)|(%a)|(%d%a*)|(.*)$')
  tier = tonumber(tier)
  band = tonumber(band) or A.old_band
  local qkey = RQQ .. queue
  if tier and before(tier, band, -1, best_tier, best_band, 0) then
    local model = queue_model(part)
    local reason = queue_misfit(kind, flags, floor, model)
    if reason then
      local waiting = redis.call('LLEN', qkey)
      if waiting == 0 then redis.call('SREM', active_key, queue) end
      skip(reason, waiting)
    else
      local heads = redis.call('LRANGE', qkey, 0, A.look - 1)
      if #heads == 0 then redis.call('SREM', active_key, queue) end
      for _, jid in ipairs(heads) do
        local misfit, image_model = image_misfit(jid, tier, model)
        if misfit then
          -- Maintenance hides other users' work from the worker; it is not a reason to report.
          if misfit ~= 'maintenance' then skip(misfit, 1) end
        else
          local seq = num(redis.call('HGET', P .. 'job:' .. jid, 'seq'))
          if before(tier, band, seq, best_tier, best_band, best_seq) then
            best_tier, best_band, best_seq, best_queue, best_jid = tier, band, seq, queue, jid
            best_model = image_model
          end
          break
        end
      end
    end
  end
end

if not best_jid then
  local reply = {'none'}
  if maintenance then reply = {'maintenance'} end
  for reason, count in pairs(skipped) do
    reply[#reply + 1] = reason
    reply[#reply + 1] = count
  end
  return reply
end

-- The chosen image, and as many more waiting images of its request as the worker may take.
local rid, steps, px, mpart, mps =
  unpack(redis.call('HMGET', P .. 'job:' .. best_jid, 'req', 'steps', 'px', 'model', 'mps'))
local rkey = P .. 'req:' .. rid
local taken = {best_jid}
if #A.leases > 1 and redis.call('HGET', rkey, 'nobatch') ~= '1' then
  for _, jid in ipairs(redis.call('LRANGE', rkey .. ':jobs', 0, -1)) do
    if #taken >= #A.leases then break end
    if jid ~= best_jid and redis.call('HGET', P .. 'job:' .. jid, 'state') == 'waiting' then
      taken[#taken + 1] = jid
    end
  end
end

-- Enough time for the whole batch: the public horde's per-image ttl, once per image.
local ttl
if A.ttl_override > 0 then
  ttl = A.ttl_override
else
  ttl = math.max(A.ttl_min, math.floor(30 + #taken * num(steps) * 2 * num(px) / 262144))
end
local expires = now + ttl
local images, lids = {}, {}
for i, jid in ipairs(taken) do
  redis.call('LREM', RQQ .. best_queue, 1, jid)
  redis.call('ZREM', P .. 'waiting:' .. best_queue, jid)
  local lid = A.leases[i]
  local lkey = P .. 'lease:' .. lid
  redis.call('HSET', lkey, 'job', jid, 'req', rid, 'worker', wid, 'owner', A.owner,
    'state', 'active', 'started', tostring(now), 'expires', tostring(expires),
    'ttl', tostring(ttl), 'token', A.tokens[i], 'model', best_model)
  redis.call('EXPIRE', lkey, math.ceil(ttl + A.keep))
  redis.call('ZADD', P .. 'leases', expires, lid)
  redis.call('HSET', P .. 'job:' .. jid, 'state', 'leased', 'lease', lid)
  rq_started(best_queue, jid, lid)
  images[i] = {lid, jid, A.tokens[i]}
  lids[i] = lid
end
if nonce_key then
  redis.call('SET', nonce_key, cjson.encode(lids), 'EX', math.ceil(ttl))
end
count_waiting(mpart, -#taken, mps)
redis.call('HINCRBY', rkey, 'waiting', -#taken)
redis.call('HINCRBY', rkey, 'processing', #taken)
if redis.call('ZSCORE', P .. 'activity', rid) then
  redis.call('ZADD', P .. 'activity', now, rid)
end
publish(rid, 'popped')
-- Everything the pop reply needs, so the pop costs one round trip.
return job_reply(rid, best_model, ttl, images)
"""

POP_SCRIPT = LuaScript(_POP_LUA)
# The public horde's threshold for requests with slow_workers=false: 0.5 megapixel-steps/s.
MIN_FAST_WORKER_SPEED = 0.5
# Without a model reference, limit_max_steps uses the public horde's default bounds (20..40).
LIMIT_MAX_STEPS = (20 + 40) / 2


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
    serves: str = ""
    trusted: bool = False
    limit_max_steps: bool = False
    require_upfront_kudos: bool = False
    extra_slow_worker: bool = False
    amount: int = 1
    nonce: str = ""
    uptime_reward_cents: int = 0  # what each 10 minutes online earns its owner (kudos/uptime.py)
    # Exactly which it has (None = any, as the public horde assumes): queue/wants.py.
    post_processors: list[str] | None = None
    controlnet_types: list[str] | None = None
    control_map_types: list[str] | None = None
    loras: list[str] | None = None
    textual_inversions: list[str] | None = None


@dataclass(frozen=True)
class LeasedImage:
    lease_id: str
    job_id: str
    seed: str
    upload_token: str


@dataclass(frozen=True)
class Claim:
    """Images of one request leased to the worker (one lease each)."""

    request_id: str
    model: str
    ttl: float
    spec_json: str
    source_image: str | None
    source_mask: str | None
    images: list[LeasedImage]

    @property
    def lease_ids(self) -> list[str]:
        return [image.lease_id for image in self.images]


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
    offline_seconds: float = 300  # a worker silent this long was offline (no uptime reward)


def claim_job(
    redis: Redis,
    keys: RedisKeys,
    offer: WorkerOffer,
    policy: LeasePolicy,
    now: float,
    worker_fields: dict[str, str] | None = None,
) -> Claim | NothingFits:
    """Note the worker as alive (with `worker_fields`) and claim the best images that fit."""
    leases = [new_id() for _ in range(offer.amount)]
    reply = POP_SCRIPT(
        redis,
        keys,
        now,
        worker=offer.worker_id,
        owner=str(offer.owner_id),
        trusted=offer.trusted,
        maxpx=offer.max_pixels,
        kinds=worker_kinds(offer.allow_img2img, offer.allow_painting),
        nsfw=offer.nsfw,
        serves=offer.serves,
        skip_of=SKIP_REASON_OF_LETTER,
        models=offer.models,
        blacklist=[w.lower() for w in offer.blacklist if w.strip()],
        step_limit=LIMIT_MAX_STEPS if offer.limit_max_steps else 0,
        upfront=offer.require_upfront_kudos,
        xslow=offer.extra_slow_worker,
        min_speed=MIN_FAST_WORKER_SPEED,
        look=policy.lookahead,
        leases=leases,
        tokens=[secrets.token_urlsafe(24) for _ in leases],
        nonce=offer.nonce,
        ttl_min=policy.ttl_min_seconds,
        ttl_override=float(policy.ttl_override_seconds),
        keep=int(policy.keep_seconds),
        fields=worker_fields or {},
        pp=offered(offer.post_processors),
        cn=offered(offer.controlnet_types),
        cm=offered(offer.control_map_types),
        lo=offered(offer.loras, lower=True),
        ti=offered(offer.textual_inversions, lower=True),
        old_band=LAST_BAND,
        uptime={
            "reward": offer.uptime_reward_cents,
            "every": UPTIME_REWARD_EVERY_SECONDS,
            "offline": policy.offline_seconds,
            "owner": offer.owner_id,
        },
    )
    tag = _text(reply[0])
    if tag == "job":
        rest = reply[7:]
        images = [
            LeasedImage(
                lease_id=_text(rest[i]),
                job_id=_text(rest[i + 1]),
                seed=_text(rest[i + 2]),
                upload_token=_text(rest[i + 3]),
            )
            for i in range(0, len(rest), 4)
        ]
        return Claim(
            request_id=_text(reply[1]),
            model=_text(reply[2]),
            ttl=float(_text(reply[3])),
            spec_json=_text(reply[4]),
            source_image=_text(reply[5]) or None,
            source_mask=_text(reply[6]) or None,
            images=images,
        )
    flat = reply[1:]
    skipped = {_text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}
    return NothingFits(skipped=skipped, maintenance=tag == "maintenance")


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
