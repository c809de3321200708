"""The worker loop: pop → generate → encode → upload/submit, forever, surviving a faulty horde.

Guarantees: a job that was popped is always answered (ok or faulted) unless the horde
cancelled it or definitively refused the submit, and every such outcome is logged; network
faults and 5xx are retried with exponential backoff and jitter, never in a hot loop.

Each of the `threads` slots is a pipeline (worker/pipeline.py): it pops the next job while the
current one generates and answers the last one on a side thread. This module is one job's
generation and its faults; worker/answer.py answers the horde, worker/popper.py pops.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from dataclasses import dataclass

from horde_protocol import MetadataValue, PopReply
from horde_worker.answer import Answerer, Fault, JobOutcome
from horde_worker.config import WorkerSettings
from horde_worker.device import is_out_of_memory, release_memory
from horde_worker.generate import GenerationOutcome, JobInterrupted, generate
from horde_worker.horde_client import HordeClient, HordeRefusal, TransientError
from horde_worker.job import Capabilities, Job, JobRejected, job_from_pop
from horde_worker.lease import Lease
from horde_worker.models import ModelRegistry
from horde_worker.popper import LogGate, Popper
from horde_worker.progress import ProgressReporter, ProgressSupport, StopReason
from horde_worker.retry import GaveUp, Retrier
from horde_worker.shutdown import Shutdown
from horde_worker.stats import WorkerStats

log = logging.getLogger("horde_worker")

__all__ = ["Generated", "JobOutcome", "Popped", "WorkerLoop"]


@dataclass(frozen=True)
class Popped:
    """A job the horde handed out, and the monotonic time it came (its ttl runs from then)."""

    reply: PopReply
    received: float


@dataclass(frozen=True)
class Generated:
    """A job whose images are ready, waiting to be encoded and submitted."""

    reply: PopReply
    job: Job
    started: float  # perf_counter when its processing began (the log line's seconds)
    outcome: GenerationOutcome


class WorkerLoop:
    def __init__(
        self,
        settings: WorkerSettings,
        registry: ModelRegistry,
        client: HordeClient,
        shutdown: Shutdown | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.client = client
        self.shutdown = shutdown or Shutdown()
        self.stats = WorkerStats()
        self.progress_support = ProgressSupport()
        features = registry.features
        self.capabilities = Capabilities(
            models=tuple(registry.names),
            max_pixels=settings.max_pixels,
            allow_img2img=settings.allow_img2img,
            allow_painting=settings.allow_painting,
            post_processors=tuple(features.post_processor_names),
            controlnet_types=tuple(features.controlnet_types),
            control_map_types=tuple(features.control_map_types),
            loras=tuple(features.adapters.loras.names),
            tis=tuple(features.adapters.tis.names),
            nsfw_censor=features.nsfw_censor,
        )
        self.retry = Retrier(settings, self.shutdown)
        self.answerer = Answerer(settings, client, self.shutdown, self.stats, self.retry)
        self._log_gate = LogGate(settings.skipped_log_interval)
        # Jobs held by the slots (popped, popping ahead, generating or being answered); once
        # `_leaving`, no slot may take one.
        self._busy = 0
        self._leaving = False
        self._busy_lock = threading.Lock()

    def popper(self) -> Popper:
        """A slot's own popper (its pops and their nonces are its own)."""
        return Popper(
            self.settings,
            self.capabilities,
            self.client,
            self.shutdown,
            self.retry,
            self.answerer,
            self._log_gate,
        )

    # ---- the loop ----

    def run(self) -> None:
        """Serve until a stop is requested; returns once every slot finished its jobs."""
        from horde_worker.pipeline import SlotPipeline

        log.info(
            "worker %s serving %s on %s (max_pixels=%d, threads=%d)",
            self.settings.name,
            ", ".join(self.capabilities.models),
            self.settings.horde_url,
            self.settings.max_pixels,
            self.settings.threads,
        )
        slots = [
            threading.Thread(target=SlotPipeline(self).run, name=f"slot-{index}", daemon=True)
            for index in range(self.settings.threads)
        ]
        for slot in slots:
            slot.start()
        next_summary = time.monotonic() + self.settings.summary_interval
        while any(slot.is_alive() for slot in slots):
            for slot in slots:
                # Short joins keep the main thread free to run signal handlers.
                slot.join(timeout=0.2)
            if self.shutdown.stop_popping.is_set() and self._no_job_held():
                # Slots still alive are blocked in a pop on a hung link: they hold no job yet,
                # so waiting for their read timeout would only delay the exit.
                break
            if time.monotonic() >= next_summary:
                log.info(self.stats.summary())
                next_summary = time.monotonic() + self.settings.summary_interval
        log.info(self.stats.summary())
        log.info("worker %s stopped", self.settings.name)

    def _no_job_held(self) -> bool:
        with self._busy_lock:
            if self._busy == 0:
                self._leaving = True
                return True
            return False

    def hold(self) -> bool:
        """Count one more job held by a slot (before popping it ahead, or once popped); False
        if the worker already left."""
        with self._busy_lock:
            if self._leaving:
                return False
            self._busy += 1
            return True

    def release(self) -> None:
        """A held job was answered (or the pop-ahead brought none)."""
        with self._busy_lock:
            self._busy -= 1

    # ---- one job ----

    def process(self, reply: PopReply, received: float | None = None) -> JobOutcome:
        """Generate and answer one popped job (popped at monotonic time `received`, default
        now); returns how it ended, for the log and tests."""
        result = self.generate_job(reply, received)
        return result if isinstance(result, JobOutcome) else self.deliver(result)

    def generate_job(
        self, reply: PopReply, received: float | None = None
    ) -> JobOutcome | Generated:
        """Generate the images of one popped job; a job that fails is answered here (its
        outcome returned), a generated one is returned for `deliver`."""
        assert reply.has_job
        started = time.perf_counter()
        lease = Lease.start(reply.ttl, self.settings.ttl_margin, received)
        if reply.payload is None:
            return self._fault(
                reply, None, started, Fault("the pop reply has a job id but no payload")
            )
        try:
            job = self._prepare(reply)
        except JobRejected as rejected:
            log.warning("job %s rejected: %s", reply.id, rejected.reason)
            fault = Fault(rejected.reason, rejected.meta_type, rejected.meta_value)
            return self._fault(reply, None, started, fault)
        model = self.registry.get(job.model)
        if model is None:
            return self._fault(
                reply, job, started, Fault(f"model {job.model!r} is not loaded here")
            )
        reporter = ProgressReporter(
            self.client,
            job.id,
            job.progress_url,
            self.progress_support,
            self.shutdown.abort_job,
            interval=self.settings.progress_interval,
            preview_every=self.settings.preview_every,
            lease=lease,
        )
        try:
            with reporter:
                outcome = generate(job, model, reporter, self.registry.features)
        except JobInterrupted:
            return self._interrupted(reply, job, started, reporter.stop_reason)
        except Exception as error:
            return self._fault(reply, job, started, self._generation_fault(job, error))
        self.stats.add(
            images=len(outcome.images),
            images_censored=sum(generated.censored for generated in outcome.images),
            steps=outcome.steps_run,
            generation_seconds=outcome.seconds,
            jobs_generated=1,
        )
        return Generated(reply, job, started, outcome)

    def deliver(self, generated: Generated) -> JobOutcome:
        """Encode, upload and submit the images of a generated job; log how it ended."""
        outcome = generated.outcome
        result = self.answerer.submit_images(generated.job, outcome.images)
        self._log_job(
            generated.reply,
            generated.job,
            generated.started,
            result,
            steps_run=outcome.steps_run,
            generation_seconds=outcome.seconds,
        )
        return result

    def hand_back(self, popped: Popped, reason: str) -> JobOutcome:
        """Answer a job popped ahead and never started `faulted` at once, so the horde gives
        it to another worker now rather than when its ttl runs out."""
        started = time.perf_counter()
        reply = popped.reply
        log.info("job %s handed back unstarted: %s", reply.id, reason)
        self.answerer.answer_faulted(
            list(reply.ids) or [str(reply.id)], Fault(reason), seed=0, unstarted=True
        )
        self.stats.add(jobs_returned=1)
        self._log_job(reply, None, started, JobOutcome.RETURNED, steps_run=0)
        return JobOutcome.RETURNED

    def _interrupted(
        self, reply: PopReply, job: Job, started: float, reason: StopReason | None
    ) -> JobOutcome:
        if reason is StopReason.CANCELLED:
            # Answering frees the requester's slot at once on our horde (docs/protocol.md).
            fault = Fault("cancelled by its requester")
            return self._fault(reply, job, started, fault, JobOutcome.CANCELLED)
        if reason is StopReason.EXPIRED:
            log.warning("job %s cannot be submitted within its ttl of %ss", job.id, reply.ttl)
            fault = Fault(
                f"stopped: it could not be finished and submitted within its ttl of {reply.ttl}s"
            )
            return self._fault(reply, job, started, fault)
        return self._fault(reply, job, started, Fault("worker shutting down"))

    def _fault(
        self,
        reply: PopReply,
        job: Job | None,
        started: float,
        fault: Fault,
        outcome: JobOutcome = JobOutcome.FAULTED,
    ) -> JobOutcome:
        """Answer every image of the job `faulted` with the reason, count and log it."""
        ids = job.ids if job else list(reply.ids) or [str(reply.id)]
        if outcome is JobOutcome.CANCELLED:
            self.answerer.answer_faulted(ids, fault, job.seeds[0] if job else 0)
            self.stats.add(jobs_cancelled=1)  # not a fault of this worker
        else:
            self.answerer.submit_faulted(ids, fault, job.seeds[0] if job else 0)
        self._log_job(reply, job, started, outcome, steps_run=0)
        return outcome

    def _prepare(self, reply: PopReply) -> Job:
        source_bytes = self._fetch_if_link(reply.source_image, "source_image")
        mask_bytes = self._fetch_if_link(reply.source_mask, "source_mask")
        return job_from_pop(
            reply,
            self.capabilities,
            source_bytes=source_bytes,
            mask_bytes=mask_bytes,
            # A job without a seed still gets a stable one, so a retry reproduces it.
            fallback_seed=zlib.crc32((reply.id or "").encode()),
        )

    def _fetch_if_link(self, value: str | None, field: str) -> bytes | None:
        if not value or not value.startswith(("http://", "https://")):
            return None
        try:
            return self.retry(
                lambda: self.client.download(value),
                f"download {field}",
                give_up=self.shutdown.abort_job,
                max_attempts=5,
            )
        except (HordeRefusal, TransientError, GaveUp) as error:
            raise JobRejected(
                f"{field}: download failed ({error})", field, MetadataValue.DOWNLOAD_FAILED
            ) from None

    def _generation_fault(self, job: Job, error: Exception) -> Fault:
        if is_out_of_memory(error):
            release_memory(self.registry.placement)
            log.error("job %s ran out of memory at %s", job.id, job.size)
            return Fault(f"out of memory at {job.size} on {self.registry.placement.device}")
        log.exception("job %s failed", job.id)
        return Fault(f"generation failed: {type(error).__name__}: {error}")

    def _log_job(
        self,
        reply: PopReply,
        job: Job | None,
        started: float,
        state: JobOutcome,
        *,
        steps_run: int,
        generation_seconds: float | None = None,
    ) -> None:
        seconds = time.perf_counter() - started
        speed = steps_run / generation_seconds if generation_seconds else 0.0
        payload = reply.payload
        mode = job.mode.value if job else "unknown"
        size = job.size if job else (f"{payload.width}x{payload.height}" if payload else "?")
        steps = job.steps if job else (payload.ddim_steps if payload else 0)
        log.info(
            "job %s %s model=%s size=%s steps=%d images=%d seconds=%.2f it/s=%.1f state=%s",
            reply.id,
            mode,
            reply.model,
            size,
            steps,
            len(job.ids) if job else len(reply.ids or [reply.id]),
            seconds,
            speed,
            state.value,
        )
