"""The Redis connection: a real server by URL, or an in-process fakeredis when none is set."""

from __future__ import annotations

from dataclasses import dataclass

import fakeredis
from redis import Redis

from horde_api.settings import HordeSettings


@dataclass(frozen=True)
class RedisConnection:
    redis: Redis
    # Set in embedded mode: the in-process store itself (for snapshots).
    embedded_server: fakeredis.FakeServer | None = None


def connect(settings: HordeSettings) -> RedisConnection:
    if settings.redis_url:
        return RedisConnection(Redis.from_url(settings.redis_url, health_check_interval=30))
    server = fakeredis.FakeServer()
    return RedisConnection(fakeredis.FakeRedis(server=server), server)
