"""Moving kudos events from Redis into the database.

The queue's scripts charge and reward inside the same atomic step that finishes an image or
queues a request: they append an event to one Redis list, never touching the database on the
request path. Each API process's janitor settles that list: it reads a batch, applies it in one
database transaction (the ledger's unique event ids make a second application a no-op), then
removes exactly that batch from the list's head. A crash between the two steps re-applies the
batch harmlessly; a lock keeps the processes from settling the same batch at once.
"""

from __future__ import annotations

import logging
import secrets

from redis import Redis
from sqlalchemy.orm import Session, sessionmaker

from horde_api.kudos.ledger import KudosEvent, apply_events
from horde_api.queue.keys import RedisKeys
from horde_api.queue.lua import LuaScript

log = logging.getLogger(__name__)

LOCK_MILLISECONDS = 30_000

_DROP_SETTLED = LuaScript(
    r"""
-- A.first: the first event of the settled batch; A.count: its length
-- The batch is removed only if it is still at the head (nothing else removed it meanwhile).
local key = P .. 'kudos:events'
if redis.call('LINDEX', key, 0) == A.first then
  redis.call('LTRIM', key, A.count, -1)
  return 1
end
return 0
"""
)

_UNLOCK = LuaScript(
    r"""
-- A.token: this settler's lock token
if redis.call('GET', P .. 'kudos:settling') == A.token then
  redis.call('DEL', P .. 'kudos:settling')
end
return 0
"""
)


def _decoded(raw: list[bytes], redis: Redis, keys: RedisKeys) -> list[KudosEvent]:
    events = []
    for text in raw:
        try:
            events.append(KudosEvent.from_json(text))
        except (ValueError, KeyError, TypeError):
            # Kept aside for the operator rather than blocking every event behind it.
            log.error("unreadable kudos event kept in %s: %r", keys.kudos_events_bad, text[:200])
            redis.rpush(keys.kudos_events_bad, text)
    return events


def settle(redis: Redis, keys: RedisKeys, sessions: sessionmaker[Session], batch: int = 500) -> int:
    """Settle up to `batch` waiting events; how many changed balances (0 when another process
    is settling)."""
    token = secrets.token_hex(8)
    if not redis.set(keys.kudos_settling, token, nx=True, px=LOCK_MILLISECONDS):
        return 0
    try:
        raw = redis.lrange(keys.kudos_events, 0, batch - 1)
        if not raw:
            return 0
        with sessions() as session:
            applied = apply_events(session, _decoded(raw, redis, keys))
            session.commit()
        _DROP_SETTLED(redis, keys, 0, first=raw[0].decode(), count=len(raw))
        return applied
    finally:
        _UNLOCK(redis, keys, 0, token=token)


def push_event(redis: Redis, keys: RedisKeys, event: KudosEvent) -> None:
    redis.rpush(keys.kudos_events, event.to_json())
