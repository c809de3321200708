"""Periodic upkeep run by every API process: expired leases, leases whose pop reply never left,
forgotten requests, old results, uploads never submitted.

Each step is an atomic Lua script or guarded by ZREM, so any number of processes may run it at
the same time; each piece of work is done once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from redis import Redis

from horde_api.queue.in_flight import repair_in_flight_counts
from horde_api.queue.keys import RedisKeys
from horde_api.queue.leases import reap_expired_leases
from horde_api.queue.pickup import requeue_unsent
from horde_api.queue.requests import expire_stale_requests
from horde_api.queue.retention import (
    forget_empty_queues,
    purge_finished_requests,
    purge_orphan_uploads,
)
from horde_api.settings import HordeSettings
from horde_api.store.results import ResultStore

log = logging.getLogger(__name__)


class Janitor:
    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        store: ResultStore,
        settings: HordeSettings,
        clock: Callable[[], float] = time.time,
        after_run: Callable[[], None] | None = None,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.store = store
        self.settings = settings
        self.clock = clock
        self._after_run = after_run
        self._stop = threading.Event()
        self._next_repair = float("-inf")
        self._next_upload_sweep = float("-inf")
        self._thread: threading.Thread | None = None

    def run_once(self, now: float | None = None) -> dict[str, int]:
        now = self.clock() if now is None else now
        done = {
            "leases_requeued": reap_expired_leases(
                self.redis, self.keys, now, self.settings.max_faults_per_request
            ),
            "unsent_requeued": requeue_unsent(
                self.redis, self.keys, now, self.settings.pop_pickup_seconds
            ),
            "requests_expired": expire_stale_requests(
                self.redis, self.keys, now, self.settings.request_expiry_seconds
            ),
            "requests_purged": purge_finished_requests(
                self.redis, self.keys, self.store, now, self.settings.result_retention_seconds
            ),
            "uploads_purged": self._sweep_uploads(now),
            "queues_forgotten": forget_empty_queues(self.redis, self.keys, now),
            "in_flight_repaired": self._repair_in_flight(now),
        }
        if self._after_run is not None:
            self._after_run()
        return done

    def _sweep_uploads(self, now: float) -> int:
        # Listing a bucket is a billed request: with S3 it is done once a minute, not per pass.
        if now < self._next_upload_sweep:
            return 0
        self._next_upload_sweep = now + self.settings.resolved_upload_sweep_seconds()
        return purge_orphan_uploads(self.redis, self.keys, self.store, now)

    def _repair_in_flight(self, now: float) -> int:
        if now < self._next_repair:
            return 0
        self._next_repair = now + self.settings.in_flight_repair_seconds
        return repair_in_flight_counts(self.redis, self.keys, now)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="horde-janitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.janitor_interval_seconds):
            try:
                self.run_once()
            except Exception:
                log.warning("janitor pass failed; retrying next interval", exc_info=True)
