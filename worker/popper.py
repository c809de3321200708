"""Asking the horde for jobs: the pop request, the idle wait, the long-poll, the pop-ahead.

On our horde a pop may wait server-side for a job (`long_poll_seconds`, our extension): an
idle worker then picks a new job as soon as it is queued, with one open request instead of a
stream of empty pops. A horde whose reply does not echo `long_poll_seconds` (the public one)
does not support it; the worker then pops with the idle back-off (`idle_initial_delay` doubling
up to `idle_max_delay`, never more) and stops sending the field.
"""

from __future__ import annotations

import functools
import logging
import secrets
import threading
import time

from horde_protocol import ErrorCode, PopReply, PopRequest
from horde_worker.answer import Answerer, Fault
from horde_worker.backoff import Backoff
from horde_worker.config import WorkerSettings
from horde_worker.horde_client import (
    BRIDGE_AGENT,
    HordeClient,
    HordeRefusal,
    MalformedReply,
    TransientError,
)
from horde_worker.job import Capabilities
from horde_worker.retry import GaveUp, Retrier
from horde_worker.shutdown import Shutdown

log = logging.getLogger("horde_worker")


class LogGate:
    """Lets a repeated message through at most once per `interval` seconds, across slots."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last = float("-inf")
        self._lock = threading.Lock()

    def open(self) -> bool:
        with self._lock:
            now = time.monotonic()
            if now - self._last < self.interval:
                return False
            self._last = now
            return True


class Popper:
    """One slot's pops. Not shared between slots: it keeps the request whose reply was lost."""

    def __init__(
        self,
        settings: WorkerSettings,
        capabilities: Capabilities,
        client: HordeClient,
        shutdown: Shutdown,
        retry: Retrier,
        answerer: Answerer,
        log_gate: LogGate,
    ) -> None:
        self.settings = settings
        self.capabilities = capabilities
        self.client = client
        self.shutdown = shutdown
        self.retry = retry
        self.answerer = answerer
        self.log_gate = log_gate
        # None until a reply says whether the horde holds pops; False = it does not.
        self.long_poll: bool | None = None if settings.pop_long_poll_seconds > 0 else False
        # A pop whose reply never came: the next pop repeats it (same nonce), so a job the
        # horde leased to it comes back instead of waiting out its ttl.
        self._unanswered: PopRequest | None = None

    def next_job(self) -> PopReply | None:
        """Pop until a job comes; None once a stop was asked."""
        stop = self.shutdown.stop_popping
        idle = Backoff(self.settings.idle_initial_delay, self.settings.idle_max_delay)
        while not stop.is_set():
            wait = self.settings.pop_long_poll_seconds if self.long_poll is not False else 0.0
            request = self._request(wait)
            asked = time.monotonic()
            try:
                # One request (one nonce) for all the retries of this pop.
                reply = self.retry(
                    functools.partial(self.client.pop, request, wait=wait),
                    "pop",
                    give_up=stop,
                )
            except GaveUp:
                return None
            except (MalformedReply, HordeRefusal) as error:
                self._unanswered = None
                stop.wait(self._after_error(error))
                continue
            self._unanswered = None
            if reply.has_job:
                return reply
            self._log_skipped(reply)
            if wait and reply.long_poll_seconds is not None:
                self.long_poll = True
                # The horde held the pop: ask again at once, unless it answered so early that
                # asking again could become a hot loop.
                stop.wait(max(0.0, self.settings.idle_initial_delay - (time.monotonic() - asked)))
                continue
            if wait:
                log.info("the horde does not hold pops (no long-poll); polling with back-off")
                self.long_poll = False
            stop.wait(idle.next_delay())
        return None

    def pop_ahead(self) -> PopReply | None:
        """One pop without waiting, for the job after the running one; None when none came
        (a failure here is not retried: the slot pops normally once it is free)."""
        request = self._request(0.0)
        try:
            reply = self.client.pop(request)
        except TransientError as error:
            log.debug("pop-ahead failed (%s); the next pop repeats it", error)
            return None
        except (MalformedReply, HordeRefusal) as error:
            self._unanswered = None
            self._after_error(error)
            return None
        self._unanswered = None
        return reply if reply.has_job else None

    def _request(self, wait: float) -> PopRequest:
        if self._unanswered is None:
            self._unanswered = self.build_request()
        # The same nonce whatever the wait: only the nonce makes a repeated pop the same one.
        return self._unanswered.model_copy(update={"long_poll_seconds": wait})

    def build_request(self) -> PopRequest:
        s = self.settings
        c = self.capabilities
        return PopRequest(
            name=s.name,
            models=list(c.models),
            max_pixels=s.max_pixels,
            nsfw=s.nsfw,
            blacklist=s.blacklist,
            allow_img2img=s.allow_img2img,
            allow_painting=s.allow_painting,
            # Exactly what it has: the horde then never sends a job it would have to refuse.
            allow_post_processing=bool(c.post_processors),
            allow_lora=bool(c.loras or c.tis),
            allow_controlnet=bool(c.controlnet_types),
            allow_hires_fix=c.hires_fix,
            allow_tiling=c.tiling,
            post_processors=list(c.post_processors),
            controlnet_types=list(c.controlnet_types),
            control_map_types=list(c.control_map_types),
            loras=list(c.loras),
            textual_inversions=list(c.tis),
            # Our extension: frames between two seeds/prompts (worker/interpolation.py).
            allow_interpolation=True,
            # Our extension: false keeps jobs that must be censored away from this worker.
            nsfw_censor=c.nsfw_censor,
            threads=s.threads,
            amount=1,
            bridge_agent=BRIDGE_AGENT,
            nonce=secrets.token_urlsafe(16),
        )

    def _after_error(self, error: MalformedReply | HordeRefusal) -> float:
        """Log a failed pop (answering a malformed job faulted); the seconds to wait."""
        if isinstance(error, MalformedReply):
            log.error("%s", error)
            if error.job_id:
                # Answer the job anyway, so the horde requeues it instead of waiting its ttl.
                self.answerer.submit_faulted([error.job_id], Fault(str(error)), seed=0)
            return self.settings.retry_initial_delay
        if error.rc == ErrorCode.WORKER_MAINTENANCE.value:
            # Its owner put it in maintenance: nothing is wrong, ask again now and then.
            if self.log_gate.open():
                log.info("worker in maintenance mode, no job of its owner waits: %s", error.message)
            return self.settings.idle_max_delay
        # Bad key, worker name owned by someone else…: wait and retry, slowly, so that fixing it
        # on the horde side brings the worker back.
        log.error("the horde refused the pop: %s", error)
        return self.settings.retry_max_delay

    def _log_skipped(self, reply: PopReply) -> None:
        if not reply.skipped or not self.log_gate.open():
            return
        reasons = ", ".join(f"{reason}={count}" for reason, count in sorted(reply.skipped.items()))
        log.info("no job for this worker; waiting requests skipped because of: %s", reasons)
