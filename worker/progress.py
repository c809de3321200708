"""Per-step progress and previews to the horde (our extension), sent off the generation thread.

The generation thread only records the latest step (and, now and then, a tiny preview); a
sender thread posts it, at most once per `interval`. A horde without the endpoint is detected
on the first report and never asked again.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

from horde_protocol import ProgressRequest
from horde_worker.horde_client import HordeClient, HordeRefusal, TransientError
from horde_worker.images import latent_preview, to_base64
from horde_worker.lease import Lease

log = logging.getLogger(__name__)


class StopReason(str, Enum):
    """Why a ProgressReporter stopped its job."""

    ABORTED = "aborted"  # the worker is shutting down (second signal)
    CANCELLED = "cancelled"  # the horde says its requester cancelled it
    EXPIRED = "expired"  # it can no longer be submitted within the job's ttl


@dataclass
class _Report:
    """The latest step, waiting for the sender thread."""

    step: int
    total: int
    latents: Any | None  # a copy of the first image's latents when a preview is due


class ProgressSupport:
    """Whether the horde has the progress endpoint: unknown until the first answer."""

    def __init__(self) -> None:
        self.supported: bool | None = None

    def record(self, supported: bool) -> None:
        if self.supported is None and not supported:
            log.info("this horde has no progress endpoint; not reporting progress")
        if self.supported is None or supported:
            self.supported = supported


class ProgressReporter:
    """A StepObserver for one job: reports progress, stops on cancel, on abort, or when the job
    can no longer be submitted within its lease."""

    def __init__(
        self,
        client: HordeClient,
        job_id: str,
        url: str | None,
        support: ProgressSupport,
        abort: threading.Event,
        *,
        interval: float,
        preview_every: int,
        lease: Lease | None = None,
    ) -> None:
        self.client = client
        self.job_id = job_id
        # Our horde names the URL in the pop reply; otherwise try the conventional path.
        self.explicit_url = url is not None
        self.url = url or f"{client.api}/generate/progress"
        self.support = support
        self.abort = abort
        self.interval = interval
        self.preview_every = preview_every
        self.cancelled = threading.Event()
        self.lease = lease
        self.stop_reason: StopReason | None = None
        self._pending: _Report | None = None
        self._last_queued = 0.0
        self._last_preview_step = 0
        self._wake = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.explicit_url or self.support.supported is not False

    def __enter__(self) -> ProgressReporter:
        if self.enabled:
            self._thread = threading.Thread(
                target=self._send_loop, name=f"progress-{self.job_id[:8]}", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        # Not joined: a report stuck on a slow horde must not delay the submit.

    def on_step(self, step: int, total: int, latents: Any) -> bool:
        if self.abort.is_set():
            self.stop_reason = StopReason.ABORTED
            return True
        if self.cancelled.is_set():
            self.stop_reason = StopReason.CANCELLED
            return True
        if self.lease is not None and not self.lease.can_finish(step, total):
            self.stop_reason = StopReason.EXPIRED
            return True
        if self._thread is None:
            return False
        now = time.monotonic()
        if now - self._last_queued < self.interval and step < total:
            return False
        self._last_queued = now
        preview_latents = None
        if (
            self.preview_every
            and latents is not None
            and step - self._last_preview_step >= self.preview_every
        ):
            self._last_preview_step = step
            # Only a copy of the first image's latents here (the sampler may reuse the
            # tensor); the preview itself is made on the sender thread, off the generation.
            preview_latents = latents[:1].detach().clone()
        with self._wake:
            self._pending = _Report(step, total, preview_latents)
            self._wake.notify_all()
        return False

    def _send_loop(self) -> None:
        while True:
            with self._wake:
                while self._pending is None and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                report, self._pending = self._pending, None
            if report is None:
                continue
            if not self._send(self._request(report)):
                return

    def _request(self, report: _Report) -> ProgressRequest:
        preview = None
        if report.latents is not None and self.preview_every:
            try:
                preview = to_base64(latent_preview(report.latents))
            except (ValueError, RuntimeError) as error:
                log.debug("no preview for job %s: %s", self.job_id, error)
        return ProgressRequest(
            id=self.job_id, step=report.step, total=report.total, preview=preview
        )

    def _send(self, request: ProgressRequest) -> bool:
        """Post one report; False when reporting should stop for this job."""
        try:
            reply = self.client.progress(self.url, request)
        except HordeRefusal as error:
            if error.status == 400 and request.preview:
                # The horde dislikes our previews (size, format): keep reporting steps only.
                log.debug("preview of job %s refused (%s); no more previews", self.job_id, error)
                self.preview_every = 0
                return True
            if error.status in (404, 405) and not self.explicit_url:
                self.support.record(False)
            else:
                log.debug("progress of job %s refused: %s", self.job_id, error)
            return False
        except TransientError as error:
            log.debug("progress of job %s not delivered: %s", self.job_id, error)
            return True  # the next report may get through
        except ValueError as error:  # a reply that is not a ProgressReply
            if not self.explicit_url:
                self.support.record(False)
            log.debug("progress reply not understood: %s", error)
            return False
        self.support.record(True)
        if reply.cancelled:
            log.info("job %s was cancelled by the horde; stopping it", self.job_id)
            self.cancelled.set()
            return False
        return True
