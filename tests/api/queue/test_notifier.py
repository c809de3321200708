"""The long-poll notifier on the real Redis: a change published while a process's subscription
is lost (a Redis blip between one API node and Redis, other nodes going on) must not leave that
process's waiters asleep until their wait runs out."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from redis import Redis

from horde_api.queue.keys import RedisKeys
from horde_api.queue.notifier import RequestNotifier
from tests.faults.horde_client import wait_until

pytestmark = pytest.mark.redis


@pytest.fixture
def named_redis(redis_url: str) -> Iterator[tuple[Redis, str]]:
    """A client whose connections carry a name of this test, so it can kill only its own."""
    name = f"notifier-test-{uuid.uuid4().hex[:8]}"
    client = Redis.from_url(redis_url, client_name=name)
    yield client, name
    client.close()


def _kill_subscription(admin: Redis, name: str) -> int:
    """Drop this test's pub/sub connection from the server side, as a blip would."""
    killed = 0
    for client in admin.client_list(_type="pubsub"):
        if client.get("name") == name:
            killed += admin.client_kill_filter(_id=client["id"])
    return killed


def test_waiters_are_woken_when_the_subscription_is_made_again(
    named_redis: tuple[Redis, str], redis_url: str, redis_prefix: str
) -> None:
    redis, name = named_redis
    keys = RedisKeys(redis_prefix)
    notifier = RequestNotifier(redis, keys)
    notifier.start()
    admin = Redis.from_url(redis_url)
    try:

        async def scenario() -> None:
            waiting = notifier.subscribe("r-1")
            assert await asyncio.to_thread(_kill_subscription, admin, name) == 1
            # Published while this process listens to nothing (another node's submit).
            admin.publish(keys.request_events("r-1"), "done")
            await asyncio.wait_for(waiting, timeout=10)
            # And the new subscription delivers the next change as before.
            again = notifier.subscribe("r-1")
            await asyncio.to_thread(
                wait_until, lambda: admin.publish(keys.request_events("r-1"), "x") > 0, 10
            )
            await asyncio.wait_for(again, timeout=10)

        asyncio.run(scenario())
    finally:
        notifier.stop()
        admin.close()
