"""Leases: what a worker holds between pop and submit, and how they end.

The `id` a worker sees is the lease id, not the image's job id: every pop makes a new lease, so
a late submit for a lease that expired (and whose image went to another worker) is recognised
as `AbortedGen` instead of overwriting the other worker's result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from redis import Redis

from horde_api.queue.keys import RedisKeys
from horde_api.queue.lua import LuaScript


class LeaseState(str, Enum):
    ACTIVE = "active"
    SUBMITTED = "submitted"
    ABORTED = "aborted"
    FAULTED = "faulted"
    UNCLAIMED = "unclaimed"  # its pop reply never left: requeued after the pickup window
    CANCELLED = "cancelled"  # its request was cancelled; the worker's submit answers it
    ANSWERED = "answered"  # a cancelled lease its worker answered (or whose time ran out)


# Hand-backs of unstarted jobs (`SubmitRequest.unstarted`) a request takes without a restart:
# plenty for workers stopping one after another, few enough to end a request a broken worker
# keeps popping and handing back.
MAX_HAND_BACKS = 10


class SubmitOutcome(str, Enum):
    OK = "ok"
    WITHHELD = "withheld"  # a censored or CSAM image: done, not delivered, no reward
    CANCELLED = "cancelled"  # the answer to a cancelled image (kept if it was one, no reward)
    FAULTED = "faulted"
    NOT_FOUND = "notfound"
    FORBIDDEN = "forbidden"
    DUPLICATE = "duplicate"
    ABORTED = "aborted"


_CHECK_LEASE_LUA = r"""
-- A.lease: the lease id; A.owner: the submitting worker's user id (text); A.max_faults: the
-- restarts (expired leases, faulted submits) a request survives
-- Validates the lease, and expires it on the spot when its time is up.
local lid, owner = A.lease, A.owner
local lkey = P .. 'lease:' .. lid
local jid, rid, lease_owner, state, expires =
  unpack(redis.call('HMGET', lkey, 'job', 'req', 'owner', 'state', 'expires'))
if not jid then return {'notfound'} end
if lease_owner ~= owner then return {'forbidden'} end
if state == 'submitted' or state == 'faulted' or state == 'answered' then return {'duplicate'} end
-- A cancelled image's lease ended with the cancel; its worker's submit answers it.
local cancelled = state == 'cancelled'
if state ~= 'active' and not cancelled then return {'aborted'} end
if not cancelled and now > num(expires) then
  requeue_lease(lid, 'aborted', true)
  return {'aborted'}
end
-- The worker has the job: its pop reply did arrive.
redis.call('ZREM', P .. 'leases:unsent', lid)
"""

_SUBMIT_LUA = (
    _CHECK_LEASE_LUA
    + r"""
-- A.state: the generation state submitted (ok, censored, csam, faulted); A.record: the
-- generation record (JSON text); A.ref: the stored result's reference ('' when none is kept);
-- A.unstarted: a fault for a job its worker popped ahead and never started (our extension);
-- A.max_hand_backs: how many of those a request takes before they count as restarts
local gen_state, record, ref = A.state, A.record, A.ref
local rkey = P .. 'req:' .. rid
local jkey = P .. 'job:' .. jid
local queue = redis.call('HGET', jkey, 'queue')
if cancelled then
  -- The worker answered a cancelled image: its requester's slot is free again. An image it
  -- still delivers is kept (the request was done already; its `finished` count grows).
  redis.call('ZREM', P .. 'leases', lid)
  release_in_flight(rid, 1)
  if gen_state == 'faulted' then
    redis.call('HSET', lkey, 'state', 'answered')
    return {'cancelled', rid}
  end
  redis.call('HSET', lkey, 'state', 'submitted')
  redis.call('HSET', jkey, 'state', 'done', 'ref', ref)
  redis.call('ZREM', RQ.canceled .. queue, jid)
  rq_ended(queue, jid, 'finished', '+inf')
  redis.call('HSET', rkey .. ':gens', jid, record)
  redis.call('HINCRBY', rkey, 'finished', 1)
  publish(rid, 'submitted')
  return {'cancelled', rid}
end
if gen_state == 'faulted' then
  -- A hand-back is nobody's fault, but counted: a worker handing the same image back again and
  -- again must not keep its request from ever ending.
  local restarted = not (A.unstarted
    and redis.call('HINCRBY', rkey, 'handed_back', 1) <= A.max_hand_backs)
  requeue_lease(lid, 'faulted', restarted)
  return {'faulted', rid}
end
redis.call('ZREM', P .. 'leases', lid)
redis.call('HSET', lkey, 'state', 'submitted')
redis.call('HSET', jkey, 'state', 'done', 'ref', ref)
rq_not_started(queue, jid, lid)
rq_ended(queue, jid, 'finished', '+inf')
redis.call('HSET', rkey .. ':gens', jid, record)
redis.call('HDEL', rkey .. ':progress', jid)
redis.call('HINCRBY', rkey, 'processing', -1)
redis.call('HINCRBY', rkey, 'finished', 1)
release_in_flight(rid, 1)
if redis.call('ZSCORE', P .. 'activity', rid) then redis.call('ZADD', P .. 'activity', now, rid) end
local wkey = P .. 'worker:' .. redis.call('HGET', lkey, 'worker')
-- Speeds (moving averages): the horde's seconds per megapixel-step for wait estimates, the
-- worker's megapixel-steps per second for requests that want fast workers.
local started = redis.call('HGET', lkey, 'started')
local px, steps = unpack(redis.call('HMGET', jkey, 'px', 'steps'))
local work = num(px) * num(steps) / 1000000
local elapsed = now - num(started)
if work > 0 then
  local sample = elapsed / work
  local old = tonumber(redis.call('HGET', P .. 'stats', 'sec_per_mps'))
  if old then sample = old * 0.8 + sample * 0.2 end
  redis.call('HSET', P .. 'stats', 'sec_per_mps', tostring(sample))
  if elapsed > 0 then
    local speed = work / elapsed
    local old_speed = tonumber(redis.call('HGET', wkey, 'mps'))
    if old_speed then speed = old_speed * 0.8 + speed * 0.2 end
    redis.call('HSET', wkey, 'mps', tostring(speed))
  end
end
finalize_if_idle(rid)
publish(rid, 'submitted')
-- Kudos: the requester pays for the finished image, the worker's owner earns its price times
-- the worker's bridge factor; both as events the janitor settles into the database
-- (kudos/settlement.py), under ids that make a second settlement of them a no-op.
local price_c, burn_c, burn0_c, uid =
  unpack(redis.call('HMGET', rkey, 'price_c', 'burn_c', 'burn0_c', 'uid'))
local function kudos_event(id, user, cents, extra)
  local event = {event_id = id .. ':' .. lid, user_id = tonumber(user), cents = cents,
    kind = 'accumulated', request_id = rid}
  for name, value in pairs(extra or {}) do event[name] = value end
  redis.call('RPUSH', P .. 'kudos:events', cjson.encode(event))
end
local function charge(cents)
  redis.call('HINCRBY', rkey, 'consumed_c', cents)
  if num(uid) > 0 and cents > 0 then kudos_event('burn', uid, -cents) end
end
if gen_state ~= 'ok' then
  -- Censored or CSAM: the image slot is done, but it is no delivered image — the worker and
  -- its owner are not credited and no reward is paid; its requester pays the per-image tax.
  charge(num(burn0_c))
  return {'withheld', rid}
end
charge(num(burn_c))
local factor = tonumber(redis.call('HGET', wkey, 'kudos_factor')) or 1
local owner = redis.call('HGET', lkey, 'owner')
local reward = math.floor(num(price_c) * factor + 0.5)
if reward > 0 then
  kudos_event('reward', owner, reward,
    {worker_id = redis.call('HGET', lkey, 'worker'), worker_kind = 'generated'})
end
redis.call('HINCRBY', wkey, 'fulfilled', 1)
if work > 0 then
  redis.call('HINCRBYFLOAT', wkey, 'mps_total', work)
  -- The users' records: what the requester used, what the worker's owner contributed.
  local requester = redis.call('HGET', rkey, 'uid') or '0'
  redis.call('HINCRBYFLOAT', P .. 'user:' .. requester .. ':records', 'usage_mps', work)
  local contributor = P .. 'user:' .. redis.call('HGET', lkey, 'owner') .. ':records'
  redis.call('HINCRBY', contributor, 'fulfillment_image', 1)
  redis.call('HINCRBYFLOAT', contributor, 'contribution_mps', work)
end
return {'ok', rid, tostring(num(price_c))}
"""
)

_SUBMIT_CONTEXT_LUA = r"""
-- A.lease: the lease id
local lkey = P .. 'lease:' .. A.lease
local l = redis.call('HMGET', lkey, 'job', 'req', 'worker', 'state', 'expires', 'model', 'token',
  'started', 'owner')
if not l[1] then return {} end
local j = redis.call('HMGET', P .. 'job:' .. l[1], 'seed', 'idx')
local name = redis.call('HGET', P .. 'worker:' .. l[3], 'name') or ''
return {l[1], l[2], l[3], l[4], l[5], l[6], l[7], l[8], l[9], j[1] or '0', j[2] or '0', name}
"""

_REAP_LUA = r"""
-- A.limit: at most this many expired leases per run; A.max_faults: the restarts a request
-- survives
local expired = redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', now, 'LIMIT', 0, A.limit)
for _, lid in ipairs(expired) do
  local lkey = P .. 'lease:' .. lid
  if redis.call('HGET', lkey, 'state') == 'cancelled' then
    -- Its worker never answered the cancel: the slot comes back when its time is up.
    redis.call('ZREM', P .. 'leases', lid)
    redis.call('HSET', lkey, 'state', 'answered')
    release_in_flight(redis.call('HGET', lkey, 'req'), 1)
  else
    requeue_lease(lid, 'aborted', true)
  end
end
return #expired
"""

SUBMIT_SCRIPT = LuaScript(_SUBMIT_LUA)
REAP_SCRIPT = LuaScript(_REAP_LUA)
SUBMIT_CONTEXT_SCRIPT = LuaScript(_SUBMIT_CONTEXT_LUA)


@dataclass(frozen=True)
class Lease:
    lease_id: str
    job_id: str
    request_id: str
    worker_id: str
    owner_id: int
    state: LeaseState
    expires: float
    model: str
    upload_token: str
    started: float


LEASE_FIELDS = ("job", "req", "worker", "state", "expires", "model", "token", "started", "owner")


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


def _lease_from_fields(lease_id: str, values: Sequence[bytes | str | None]) -> Lease:
    """A Lease from the hash fields in LEASE_FIELDS order (as HMGET or a script returns them)."""
    job, req, worker, state, expires, model, token, started, owner = map(_text, values)
    return Lease(
        lease_id=lease_id,
        job_id=job,
        request_id=req,
        worker_id=worker,
        owner_id=int(owner or 0),
        state=LeaseState(state),
        expires=float(expires or 0),
        model=model,
        upload_token=token,
        started=float(started or 0),
    )


def read_lease(redis: Redis, keys: RedisKeys, lease_id: str) -> Lease | None:
    values = redis.hmget(keys.lease(lease_id), list(LEASE_FIELDS))
    if values[0] is None:
        return None
    return _lease_from_fields(lease_id, values)


@dataclass(frozen=True)
class SubmitContext:
    """A lease with what a submit needs besides: the image's seed and index, the worker name."""

    lease: Lease
    seed: str
    index: int
    worker_name: str


def read_submit_context(redis: Redis, keys: RedisKeys, lease_id: str) -> SubmitContext | None:
    reply = SUBMIT_CONTEXT_SCRIPT(redis, keys, 0, lease=lease_id)
    if not reply:
        return None
    lease = _lease_from_fields(lease_id, reply[: len(LEASE_FIELDS)])
    seed, idx, name = map(_text, reply[len(LEASE_FIELDS) :])
    return SubmitContext(lease=lease, seed=seed, index=int(idx or 0), worker_name=name)


@dataclass(frozen=True)
class SubmitResult:
    outcome: SubmitOutcome
    reward: float = 0.0


def submit_lease(
    redis: Redis,
    keys: RedisKeys,
    lease_id: str,
    owner_id: int,
    generation_state: str,
    record_json: str,
    ref: str,
    max_faults: int,
    now: float,
    unstarted: bool = False,
) -> SubmitResult:
    reply = SUBMIT_SCRIPT(
        redis,
        keys,
        now,
        lease=lease_id,
        owner=str(owner_id),
        state=generation_state,
        record=record_json,
        max_faults=max_faults,
        ref=ref,
        unstarted=unstarted,
        max_hand_backs=MAX_HAND_BACKS,
    )
    tag = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
    outcome = SubmitOutcome(tag)
    if outcome == SubmitOutcome.OK:
        # The reply's `reward` is the image's price, as the public horde reports it (its owner
        # earns that times the worker's bridge factor).
        return SubmitResult(outcome, int(float(reply[2])) / 100)
    return SubmitResult(outcome)


def reap_expired_leases(
    redis: Redis, keys: RedisKeys, now: float, max_faults: int, limit: int = 200
) -> int:
    """Put the images of expired leases back at the front of their queues (a restart: a request
    with more than `max_faults` fails); safe to run anywhere."""
    return int(REAP_SCRIPT(redis, keys, now, limit=limit, max_faults=max_faults))
