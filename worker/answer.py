"""Answering the horde: encode (WebP), upload, submit each image; or answer them `faulted`.

Every submit is retried until the horde has it or definitively refused it (a stopped worker
gives up `shutdown_submit_timeout` after a second signal); the outcome is counted in the stats.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from typing import Any

from horde_protocol import (
    ErrorCode,
    GenerationMetadata,
    GenerationState,
    MetadataType,
    MetadataValue,
    SubmitRequest,
)
from horde_worker.config import WorkerSettings
from horde_worker.generate import GeneratedImage
from horde_worker.horde_client import HordeClient, HordeRefusal, TransientError
from horde_worker.images import encode_webp, to_base64
from horde_worker.job import Job
from horde_worker.retry import GaveUp, Retrier
from horde_worker.shutdown import Shutdown
from horde_worker.stats import WorkerStats

log = logging.getLogger("horde_worker")

MAX_REASON = 250  # gen_metadata.ref is limited to 256 characters


class JobOutcome(str, Enum):
    """How one popped job ended (the `state=` of its log line)."""

    OK = "ok"  # every image delivered
    CENSORED = "censored"  # delivered; the safety checker replaced at least one image
    FAULTED = "faulted"  # answered faulted: the horde requeues it
    CANCELLED = "cancelled"  # its requester cancelled it; answered, not our fault
    UNDELIVERED = "undelivered"  # the horde refused a submit, or never got it
    RETURNED = "returned"  # popped ahead, answered faulted unstarted: the horde requeues it


@dataclass
class Fault:
    reason: str
    meta_type: str = MetadataType.INFORMATION
    meta_value: str = MetadataValue.SEE_REF


class Answerer:
    def __init__(
        self,
        settings: WorkerSettings,
        client: HordeClient,
        shutdown: Shutdown,
        stats: WorkerStats,
        retry: Retrier,
    ) -> None:
        self.settings = settings
        self.client = client
        self.shutdown = shutdown
        self.stats = stats
        self.retry = retry

    def submit_images(self, job: Job, images: list[GeneratedImage]) -> JobOutcome:
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
            self.retry(
                lambda: self.client.upload(url, data),
                "upload",
                max_attempts=5,
                give_up=self.shutdown.abort_job,
            )
            return True
        except (HordeRefusal, TransientError, GaveUp) as error:
            log.warning("upload of %s failed (%s); submitting it inline", image_id, error)
            return False

    def submit_faulted(self, ids: list[str], fault: Fault, seed: int) -> None:
        self.answer_faulted(ids, fault, seed)
        self.stats.add(jobs_faulted=1)

    def answer_faulted(
        self, ids: list[str], fault: Fault, seed: int, *, unstarted: bool = False
    ) -> None:
        """Tell the horde these images will not come, without counting a fault of ours;
        `unstarted`: they were popped ahead and never started (handed back)."""
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
                    unstarted=unstarted or None,
                )
            )

    def _submit(self, request: SubmitRequest) -> bool:
        """Deliver one submit: retried until accepted or definitively refused; True when the
        horde has it."""
        try:
            reply = self.retry(
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
