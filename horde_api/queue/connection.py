"""The Redis connection: a real server by URL, or an in-process fakeredis when none is set."""

from __future__ import annotations

from redis import Redis

from horde_api.settings import HordeSettings


def connect(settings: HordeSettings) -> Redis:
    if settings.redis_url:
        return Redis.from_url(settings.redis_url, health_check_interval=30)
    import fakeredis

    return fakeredis.FakeRedis(server=fakeredis.FakeServer())
