"""Retrying calls to the horde: exponential backoff with jitter, never a hot loop, and a way out
when the worker is stopping."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from horde_worker.backoff import Backoff
from horde_worker.config import WorkerSettings
from horde_worker.horde_client import TransientError
from horde_worker.shutdown import Shutdown

log = logging.getLogger("horde_worker")

T = TypeVar("T")


class GaveUp(Exception):
    """A retried call was abandoned because the worker is stopping."""


class Retrier:
    def __init__(self, settings: WorkerSettings, shutdown: Shutdown) -> None:
        self.settings = settings
        self.shutdown = shutdown

    def __call__(
        self,
        call: Callable[[], T],
        what: str,
        *,
        give_up: threading.Event | None,
        max_attempts: int | None = None,
    ) -> T:
        """`call` until it does not raise TransientError.

        Stops (GaveUp) when `give_up` is set; submits (give_up None) only stop once a job abort
        was requested and `shutdown_submit_timeout` has passed since.
        """
        backoff = Backoff(self.settings.retry_initial_delay, self.settings.retry_max_delay)
        abort_seen: float | None = None
        while True:
            try:
                return call()
            except TransientError as error:
                if max_attempts is not None and backoff.attempts + 1 >= max_attempts:
                    raise
                delay = backoff.next_delay()
                if backoff.attempts == 1 or backoff.attempts % 10 == 0:
                    log.warning("%s failed (%s); retrying in %.1fs", what, error, delay)
                else:
                    log.debug("%s failed (%s); retrying in %.1fs", what, error, delay)
            if give_up is not None:
                if give_up.wait(delay):
                    raise GaveUp(what)
                continue
            abort_job = self.shutdown.abort_job
            if abort_job.is_set():
                abort_seen = abort_seen or time.monotonic()
                remaining = self.settings.shutdown_submit_timeout - (time.monotonic() - abort_seen)
                if remaining <= 0:
                    raise GaveUp(what)
                time.sleep(min(delay, remaining))
            else:
                # Wakes early on an abort so the submit deadline starts at once.
                abort_job.wait(delay)
