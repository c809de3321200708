"""The worker loop: pop → generate → encode → upload/submit, forever, surviving a faulty horde.

Guarantees: a job that was popped is always answered (ok or faulted) unless the horde
cancelled it or definitively refused the submit, and every such outcome is logged; network
faults and 5xx are retried with exponential backoff and jitter, never in a hot loop.
"""

from __future__ import annotations

import functools
import logging
import secrets
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

from horde_protocol import (
    ErrorCode,
    GenerationMetadata,
    GenerationState,
    MetadataType,
    MetadataValue,
    PopReply,
    PopRequest,
    SubmitRequest,
)
from horde_worker.backoff import Backoff
from horde_worker.config import WorkerSettings
from horde_worker.device import is_out_of_memory, release_memory
from horde_worker.generate import GeneratedImage, JobInterrupted, generate
from horde_worker.horde_client import (
    BRIDGE_AGENT,
    HordeClient,
    HordeRefusal,
    MalformedReply,
    TransientError,
)
from horde_worker.images import encode_webp, to_base64
from horde_worker.job import Capabilities, Job, JobRejected, job_from_pop
from horde_worker.lease import Lease
from horde_worker.models import ModelRegistry
from horde_worker.progress import ProgressReporter, ProgressSupport, StopReason
from horde_worker.shutdown import Shutdown
from horde_worker.stats import WorkerStats

log = logging.getLogger("horde_worker")

T = TypeVar("T")
MAX_REASON = 250  # gen_metadata.ref is limited to 256 characters


class GaveUp(Exception):
    """A retried call was abandoned because the worker is stopping."""


class JobOutcome(str, Enum):
    """How one popped job ended (the `state=` of its log line)."""

    OK = "ok"  # every image delivered
    CENSORED = "censored"  # delivered; the safety checker replaced at least one image
    FAULTED = "faulted"  # answered faulted: the horde requeues it
    CANCELLED = "cancelled"  # its requester cancelled it; answered, not our fault
    UNDELIVERED = "undelivered"  # the horde refused a submit, or never got it


@dataclass
class Fault:
    reason: str
    meta_type: str = MetadataType.INFORMATION
    meta_value: str = MetadataValue.SEE_REF


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
        self._last_skipped_log = 0.0
        self._skipped_lock = threading.Lock()
        # Jobs being processed; once `_leaving`, no slot may start one.
        self._busy = 0
        self._leaving = False
        self._busy_lock = threading.Lock()

    # ---- the loop ----

    def run(self) -> None:
        """Serve until a stop is requested; returns once every slot finished its job."""
        log.info(
            "worker %s serving %s on %s (max_pixels=%d, threads=%d)",
            self.settings.name,
            ", ".join(self.capabilities.models),
            self.settings.horde_url,
            self.settings.max_pixels,
            self.settings.threads,
        )
        slots = [
            threading.Thread(target=self._slot, name=f"slot-{index}", daemon=True)
            for index in range(self.settings.threads)
        ]
        for slot in slots:
            slot.start()
        next_summary = time.monotonic() + self.settings.summary_interval
        while any(slot.is_alive() for slot in slots):
            for slot in slots:
                # Short joins keep the main thread free to run signal handlers.
                slot.join(timeout=0.2)
            if self.shutdown.stop_popping.is_set() and self._no_job_running():
                # Slots still alive are blocked in a pop on a hung link: they hold no job yet,
                # so waiting for their read timeout would only delay the exit.
                break
            if time.monotonic() >= next_summary:
                log.info(self.stats.summary())
                next_summary = time.monotonic() + self.settings.summary_interval
        log.info(self.stats.summary())
        log.info("worker %s stopped", self.settings.name)

    def _no_job_running(self) -> bool:
        with self._busy_lock:
            if self._busy == 0:
                self._leaving = True
                return True
            return False

    def _take_job(self) -> bool:
        """Mark a popped job as running; False if the worker already left (the horde will
        requeue the job after its ttl)."""
        with self._busy_lock:
            if self._leaving:
                return False
            self._busy += 1
            return True

    def _slot(self) -> None:
        idle = Backoff(self.settings.idle_initial_delay, self.settings.idle_max_delay)
        while not self.shutdown.stop_popping.is_set():
            # One request (one nonce) for all the retries of this pop: if a reply was lost on
            # the way, the retry gets the same job back instead of a new one.
            request = self._pop_request()
            try:
                reply = self._retry(
                    functools.partial(self.client.pop, request),
                    "pop",
                    give_up=self.shutdown.stop_popping,
                )
            except GaveUp:
                return
            except MalformedReply as error:
                log.error("%s", error)
                if error.job_id:
                    # Answer the job anyway, so the horde requeues it instead of waiting its ttl.
                    self._submit_faulted([error.job_id], Fault(str(error)), seed=0)
                self.shutdown.stop_popping.wait(self.settings.retry_initial_delay)
                continue
            except HordeRefusal as refusal:
                if refusal.rc == ErrorCode.WORKER_MAINTENANCE.value:
                    # Its owner put it in maintenance: nothing is wrong, ask again now and then.
                    self._log_maintenance(refusal)
                    self.shutdown.stop_popping.wait(self.settings.idle_max_delay)
                    continue
                # Bad key, worker name owned by someone else…: wait and retry, slowly, so that
                # fixing it on the horde side brings the worker back.
                log.error("the horde refused the pop: %s", refusal)
                self.shutdown.stop_popping.wait(self.settings.retry_max_delay)
                continue
            if not reply.has_job:
                self._log_skipped(reply)
                self.shutdown.stop_popping.wait(idle.next_delay())
                continue
            idle.reset()
            received = time.monotonic()  # the job's ttl runs from about now
            if not self._take_job():
                return
            try:
                self.process(reply, received)
            except Exception:
                # A slot must outlive any single job: log it and serve the next one.
                log.exception("job %s: unexpected error in the worker", reply.id)
            finally:
                with self._busy_lock:
                    self._busy -= 1

    def _pop_request(self) -> PopRequest:
        s = self.settings
        c = self.capabilities
        return PopRequest(
            name=s.name,
            models=list(self.capabilities.models),
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

    def _log_maintenance(self, refusal: HordeRefusal) -> None:
        with self._skipped_lock:
            now = time.monotonic()
            if now - self._last_skipped_log < self.settings.skipped_log_interval:
                return
            self._last_skipped_log = now
        log.info("worker in maintenance mode, no job of its owner waits: %s", refusal.message)

    def _log_skipped(self, reply: PopReply) -> None:
        if not reply.skipped:
            return
        with self._skipped_lock:
            now = time.monotonic()
            if now - self._last_skipped_log < self.settings.skipped_log_interval:
                return
            self._last_skipped_log = now
        reasons = ", ".join(f"{reason}={count}" for reason, count in sorted(reply.skipped.items()))
        log.info("no job for this worker; waiting requests skipped because of: %s", reasons)

    # ---- one job ----

    def process(self, reply: PopReply, received: float | None = None) -> JobOutcome:
        """Generate and answer one popped job (popped at monotonic time `received`, default
        now); returns how it ended, for the log and tests."""
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
        result = self._submit_images(job, outcome.images)
        self.stats.add(
            images=len(outcome.images),
            images_censored=sum(generated.censored for generated in outcome.images),
            steps=outcome.steps_run,
            generation_seconds=outcome.seconds,
            jobs_generated=1,
        )
        self._log_job(
            reply,
            job,
            started,
            result,
            steps_run=outcome.steps_run,
            generation_seconds=outcome.seconds,
        )
        return result

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
            self._answer_faulted(ids, fault, job.seeds[0] if job else 0)
            self.stats.add(jobs_cancelled=1)  # not a fault of this worker
        else:
            self._submit_faulted(ids, fault, job.seeds[0] if job else 0)
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
            return self._retry(
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

    # ---- answering the horde ----

    def _submit_images(self, job: Job, images: list[GeneratedImage]) -> JobOutcome:
        delivered = []
        for index, generated in enumerate(images):
            data = encode_webp(generated.image, self.settings.webp_quality)
            upload_url = job.r2_uploads[index] if index < len(job.r2_uploads) else None
            # base64 only when the image goes inline (no R2 target, or its upload failed).
            if upload_url and self._upload(generated.id, upload_url, data):
                generation = "R2"
            else:
                generation = to_base64(data)
            delivered.append(
                self._submit(
                    SubmitRequest(
                        id=generated.id,
                        generation=generation,
                        seed=generated.seed,
                        **_censorship(generated),
                    )
                )
            )
        if not all(delivered):
            self.stats.add(jobs_undelivered=1)
            return JobOutcome.UNDELIVERED
        self.stats.add(jobs_ok=1)
        return JobOutcome.CENSORED if any(g.censored for g in images) else JobOutcome.OK

    def _upload(self, image_id: str, url: str, data: bytes) -> bool:
        """PUT to the presigned URL; False (submit inline instead) if it cannot be done."""
        try:
            self._retry(
                lambda: self.client.upload(url, data),
                "upload",
                max_attempts=5,
                give_up=self.shutdown.abort_job,
            )
            return True
        except (HordeRefusal, TransientError, GaveUp) as error:
            log.warning("upload of %s failed (%s); submitting it inline", image_id, error)
            return False

    def _submit_faulted(self, ids: list[str], fault: Fault, seed: int) -> None:
        self._answer_faulted(ids, fault, seed)
        self.stats.add(jobs_faulted=1)

    def _answer_faulted(self, ids: list[str], fault: Fault, seed: int) -> None:
        """Tell the horde these images will not come, without counting a fault of ours."""
        reason = fault.reason[:MAX_REASON]
        for image_id in ids:
            self._submit(
                SubmitRequest(
                    id=image_id,
                    generation="",
                    seed=seed,
                    state=GenerationState.FAULTED,
                    gen_metadata=[
                        GenerationMetadata(type=fault.meta_type, value=fault.meta_value, ref=reason)
                    ],
                )
            )

    def _submit(self, request: SubmitRequest) -> bool:
        """Deliver one submit: retried until accepted or definitively refused; True when the
        horde has it."""
        try:
            reply = self._retry(
                lambda: self.client.submit(request),
                f"submit {request.id}",
                give_up=None,
            )
        except HordeRefusal as refusal:
            if refusal.rc == ErrorCode.DUPLICATE_GEN.value:
                # An earlier attempt got through but its reply was lost.
                log.info("submit %s: already accepted by the horde", request.id)
                return True
            if refusal.rc == ErrorCode.ABORTED_GEN.value:
                log.warning("submit %s: the horde had given up on it (ttl ran out)", request.id)
            else:
                log.error("submit %s refused: %s", request.id, refusal)
            return False
        except GaveUp:
            log.error(
                "submit %s NOT delivered: the worker was stopped while the horde was"
                " unreachable; the horde will requeue it after its ttl",
                request.id,
            )
            return False
        self.stats.add(kudos=reply.reward)
        return True

    def _retry(
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
            if self.shutdown.abort_job.is_set():
                abort_seen = abort_seen or time.monotonic()
                remaining = self.settings.shutdown_submit_timeout - (time.monotonic() - abort_seen)
                if remaining <= 0:
                    raise GaveUp(what)
                time.sleep(min(delay, remaining))
            else:
                # Wakes early on an abort so the submit deadline starts at once.
                self.shutdown.abort_job.wait(delay)

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


def _censorship(generated: GeneratedImage) -> dict[str, Any]:
    """Submit fields of one image: `censored` with the public horde's metadata when the safety
    checker replaced it (its NSFW verdict; this checker has no CSAM class), else `ok`."""
    if not generated.censored:
        return {"state": GenerationState.OK}
    return {
        "state": GenerationState.CENSORED,
        "gen_metadata": [
            GenerationMetadata(type=MetadataType.CENSORSHIP, value=MetadataValue.NSFW)
        ],
    }
