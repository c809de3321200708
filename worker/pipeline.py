"""One slot as a pipeline: the worker never idles between two jobs.

While a job generates, the slot pops the next one (pop-ahead, on a helper thread); once the
images are made, they are encoded, uploaded and submitted on a side thread while the next
generation runs. At most one job waits to be answered per slot, so a slow horde slows the slot
down instead of piling images up in memory.

Nothing popped ahead is ever dropped: a job that cannot be started is answered `faulted` at once
(`hand_back`), so the horde gives it to another worker now. That happens when a stop was asked
(the first signal stops popping; the running job is finished and answered as before), or when
its lease cannot be honoured: its ttl would run out before the running generation ends plus its
own expected time (worker/pace.py). After such a job the slot does not pop ahead for one job.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor

from horde_worker.answer import JobOutcome
from horde_worker.lease import Lease
from horde_worker.loop import Generated, Popped, WorkerLoop
from horde_worker.pace import Pace

log = logging.getLogger("horde_worker")


class SlotPipeline:
    def __init__(self, loop: WorkerLoop) -> None:
        self.loop = loop
        self.settings = loop.settings
        self.stop_popping = loop.shutdown.stop_popping
        self.popper = loop.popper()
        self.pace = Pace()
        self._skip_next_pop_ahead = False
        self._answering: Future[None] | None = None
        self._answers: ThreadPoolExecutor | None = None

    def run(self) -> None:
        """Serve until a stop is asked; returns once every job it held is answered."""
        with (
            ThreadPoolExecutor(1, thread_name_prefix="answer") as answers,
            ThreadPoolExecutor(1, thread_name_prefix="pop-ahead") as ahead_pool,
        ):
            self._answers = answers
            popped: Popped | None = None
            while True:
                if popped is None:
                    popped = self._pop()
                    if popped is None:
                        break
                ahead = self._start_pop_ahead(popped, ahead_pool)
                self._generate(popped)
                popped = self._collect(ahead)

    # ---- popping ----

    def _pop(self) -> Popped | None:
        reply = self.popper.next_job()
        if reply is None:
            return None
        popped = Popped(reply, time.monotonic())
        if not self.loop.hold():
            # The worker left while this pop was on the wire: give the job back if still we can.
            self.loop.hand_back(popped, "the worker is shutting down")
            return None
        return popped

    def _start_pop_ahead(
        self, current: Popped, pool: ThreadPoolExecutor
    ) -> Future[Popped | None] | None:
        """Pop the next job on the helper thread, holding its place in the worker's count so
        that a stop waits for it; None when the slot should not pop ahead now."""
        if self._skip_next_pop_ahead:
            self._skip_next_pop_ahead = False
            return None
        if not self.settings.pop_ahead or self.stop_popping.is_set():
            return None
        if not self._next_job_fits_in_time(current):
            return None
        if not self.loop.hold():
            return None
        return pool.submit(self._pop_ahead, current, time.monotonic())

    def _next_job_fits_in_time(self, current: Popped) -> bool:
        """Whether a job like the current one, popped now, could wait for the current one and
        still be generated within the same ttl (unknown pace or ttl: assume it could)."""
        expected = self.pace.estimate(current.reply)
        ttl = current.reply.ttl
        if expected is None or ttl is None or ttl <= 0:
            return True
        lease = Lease.start(ttl, self.settings.ttl_margin, received=0.0)
        assert lease is not None
        return 2 * expected <= lease.finish_by

    def _pop_ahead(self, current: Popped, current_began: float) -> Popped | None:
        """The next job, still held; None when none came (its place released here)."""
        try:
            reply = self.popper.pop_ahead()
        except Exception:
            log.exception("pop-ahead failed")
            reply = None
        if reply is None:
            self.loop.release()
            return None
        popped = Popped(reply, time.monotonic())
        log.info("job %s popped ahead, after job %s", reply.id, current.reply.id)
        expected_current = self.pace.estimate(current.reply)
        if expected_current is not None:
            # Known now already: hand it back at once rather than after the current job.
            reason = self._late(popped, current_began + expected_current)
            if reason:
                self._hand_back(popped, reason, lease_too_short=True)
                return None
        return popped

    def _collect(self, ahead: Future[Popped | None] | None) -> Popped | None:
        """The job popped ahead, if it can start now (else it was handed back)."""
        if ahead is None:
            return None
        popped = ahead.result()  # a pop without long-poll: bounded by the read timeout
        if popped is None:
            return None
        if self.stop_popping.is_set():
            self._hand_back(popped, "the worker is shutting down")
            return None
        reason = self._late(popped, time.monotonic())
        if reason:
            self._hand_back(popped, reason, lease_too_short=True)
            return None
        return popped

    def _late(self, popped: Popped, starts_at: float) -> str | None:
        """Why `popped`, started at `starts_at`, would miss its ttl; None if it should not."""
        reply = popped.reply
        lease = Lease.start(reply.ttl, self.settings.ttl_margin, popped.received)
        expected = self.pace.estimate(reply)
        if lease is None or expected is None or starts_at + expected <= lease.finish_by:
            return None
        return (
            f"popped ahead, but its ttl of {reply.ttl}s would run out before it is generated"
            f" here (it would start in {max(0.0, starts_at - time.monotonic()):.0f}s and take"
            f" about {expected:.0f}s)"
        )

    def _hand_back(self, popped: Popped, reason: str, *, lease_too_short: bool = False) -> None:
        if lease_too_short:
            self._skip_next_pop_ahead = True
        try:
            self.loop.hand_back(popped, reason)
        except Exception:
            log.exception("job %s: handing it back failed", popped.reply.id)
        finally:
            self.loop.release()

    # ---- generating and answering ----

    def _generate(self, popped: Popped) -> None:
        try:
            result = self.loop.generate_job(popped.reply, popped.received)
        except Exception:
            # A slot must outlive any single job: log it and serve the next one.
            log.exception("job %s: unexpected error in the worker", popped.reply.id)
            self.loop.release()
            return
        if isinstance(result, JobOutcome):  # it failed, and was answered
            self.loop.release()
            return
        outcome = result.outcome
        self.pace.add(outcome.seconds, result.job.width, result.job.height, outcome.steps_run)
        self._answer(result)

    def _answer(self, generated: Generated) -> None:
        """Encode, upload and submit on the side thread, after the previous job's answer."""
        if self._answering is not None:
            self._answering.result()
        assert self._answers is not None
        self._answering = self._answers.submit(self._deliver, generated)

    def _deliver(self, generated: Generated) -> None:
        try:
            self.loop.deliver(generated)
        except Exception:
            log.exception("job %s: unexpected error while answering it", generated.reply.id)
        finally:
            self.loop.release()
