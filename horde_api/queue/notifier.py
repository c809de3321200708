"""Wakes long-polling `check?wait=S` calls when their request changes, and pops held waiting
for a job (`long_poll_seconds`) when an image is queued.

Every state change publishes on the request's channel (inside the Lua scripts), every image put
in a queue on the `jobs-queued` channel. One thread per API process listens on both and resolves
the futures of local waiters, so a waiting client holds no thread and no Redis connection of its
own; since the messages go through Redis, a queue change on any API process wakes all of them.

Pub/sub keeps nothing for a listener that is away: when this process loses its subscription
(a Redis restart, a network blip between this node and Redis) while other nodes go on, changes
published in the gap never reach it. So every waiter (held pops too) is woken when the
subscription is made again; its long-poll re-reads the state and answers (a held pop tries to
claim again), instead of waiting out its whole wait for an event that already went by.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import defaultdict

from redis import Redis

from horde_api.queue.keys import RedisKeys

log = logging.getLogger(__name__)


class RequestNotifier:
    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self._redis = redis
        self._keys = keys
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]] = (
            defaultdict(set)
        )
        self._job_waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._channel_prefix = keys.request_events("")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._listen, name="horde-notifier", daemon=True)
        self._thread.start()
        self._ready.wait(2)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _listen(self) -> None:
        while not self._stop.is_set():
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.psubscribe(self._keys.request_events_pattern)
                pubsub.subscribe(self._keys.jobs_queued)
                if self._ready.is_set():
                    # A resubscription: the woken waiters' state reads reach Redis after the
                    # PSUBSCRIBE, so each sees any change it missed or is told of the next.
                    self._wake_all()
                    self._wake_job_waiters()
                self._ready.set()
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if not message:
                        continue
                    if message.get("type") == "message":
                        self._wake_job_waiters()
                    elif message.get("type") == "pmessage":
                        channel = message["channel"]
                        if isinstance(channel, bytes):
                            channel = channel.decode()
                        self._wake(channel[len(self._channel_prefix) :])
            except Exception:
                log.warning("request notifier lost its Redis subscription; retrying", exc_info=True)
                self._stop.wait(1.0)
            finally:
                with contextlib.suppress(Exception):
                    pubsub.close()

    def _wake(self, request_id: str) -> None:
        with self._lock:
            waiters = self._waiters.pop(request_id, None)
        for loop, future in waiters or ():
            loop.call_soon_threadsafe(_resolve, future)

    def _wake_all(self) -> None:
        with self._lock:
            waiters = [w for group in self._waiters.values() for w in group]
            self._waiters.clear()
        for loop, future in waiters:
            loop.call_soon_threadsafe(_resolve, future)

    def subscribe(self, request_id: str) -> asyncio.Future[None]:
        """A future resolved at the request's next change. Call before reading the state."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            self._waiters[request_id].add((loop, future))
        return future

    def _wake_job_waiters(self) -> None:
        # Every held pop tries again (each checks what it may take); the message names the queue
        # but queue names do not say which workers fit, so nobody is skipped on a guess.
        with self._lock:
            waiters, self._job_waiters = self._job_waiters, set()
        for loop, future in waiters:
            loop.call_soon_threadsafe(_resolve, future)

    def subscribe_jobs(self) -> asyncio.Future[None]:
        """A future resolved when the next image is queued. Call before trying to claim one."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            self._job_waiters.add((loop, future))
        return future

    def unsubscribe_jobs(self, future: asyncio.Future[None]) -> None:
        with self._lock:
            self._job_waiters.discard((future.get_loop(), future))

    @property
    def held_pops(self) -> int:
        """How many pops wait for a queued image on this process now."""
        with self._lock:
            return len(self._job_waiters)

    def unsubscribe(self, request_id: str, future: asyncio.Future[None]) -> None:
        with self._lock:
            waiters = self._waiters.get(request_id)
            if waiters is None:
                return
            waiters.discard((future.get_loop(), future))
            if not waiters:
                del self._waiters[request_id]


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
