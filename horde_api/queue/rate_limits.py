"""Fixed-window request counters in Redis, per API key and per client IP."""

from __future__ import annotations

from redis import Redis

from horde_api.queue.keys import RedisKeys

WINDOW_SECONDS = 60


def over_limit(
    redis: Redis,
    keys: RedisKeys,
    now: float,
    *,
    key_id: str | None,
    ip: str,
    per_key: int,
    per_ip: int,
) -> str | None:
    """Count this call; returns `key` or `IP` when that limit is exceeded, else None."""
    window = int(now // WINDOW_SECONDS)
    ip_key = keys.rate_counter("ip", ip, window)
    with redis.pipeline(transaction=False) as pipe:
        pipe.incr(ip_key)
        pipe.expire(ip_key, WINDOW_SECONDS * 2)
        if key_id is not None:
            key_key = keys.rate_counter("key", key_id, window)
            pipe.incr(key_key)
            pipe.expire(key_key, WINDOW_SECONDS * 2)
        counts = pipe.execute()
    if counts[0] > per_ip:
        return "IP"
    if key_id is not None and counts[2] > per_key:
        return "key"
    return None
