"""One horde request from submit to images: the job state machine.

submitting → queued/processing (polling `check`) → fetching (`status`, then decoding the
images in a background thread) → done
and from anywhere: failed (with a message in plain words) or cancelled. Cancel and giving up
after the max wait both DELETE the request on the horde. Every reply handler is guarded: an
unexpected error fails the job with a message instead of escaping into the event loop.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from PyQt5.QtCore import QObject, QTimer, pyqtSignal
from PyQt5.QtGui import QImage

from .background import BackgroundTask, run_in_background
from .client import HordeClient
from .images import ImageDecodeError, ImageTooLargeError, decode_base64, decode_image
from .network import HttpResult
from .replies import CheckReply, ReplyError, parse_check, parse_status, parse_submit

log = logging.getLogger(__name__)


class JobState(str, Enum):
    """Where a job is (a str, so it compares equal to its value)."""

    SUBMITTING = "submitting"
    QUEUED = "queued"
    PROCESSING = "processing"
    FETCHING = "fetching"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


SUBMITTING = JobState.SUBMITTING
QUEUED = JobState.QUEUED
PROCESSING = JobState.PROCESSING
FETCHING = JobState.FETCHING
DONE = JobState.DONE
FAILED = JobState.FAILED
CANCELLED = JobState.CANCELLED
FINAL_STATES = (DONE, FAILED, CANCELLED)
# The horde's error code for a request that needs kudos up front the user does not have.
KUDOS_UPFRONT = "KudosUpfront"


class WaitReason(str, Enum):
    """Why a queued job waits: an explicit field the status line reads (never the prose)."""

    NONE = ""
    QUEUE = "queue"  # waiting for its turn
    NO_WORKER = "no_worker"  # the horde says no worker can take it right now


@dataclass(frozen=True)
class PollPolicy:
    """How often and how patiently a job polls."""

    interval_s: float = 2.0  # between checks on a horde without long-poll
    long_poll_s: int = 10  # `?wait=` on a horde that has the extension
    min_gap_s: float = 0.2  # never re-poll faster than this, even with long-poll
    max_errors: int = 5  # consecutive failed polls before the job fails
    impossible_grace_s: float = 30.0  # how long `is_possible: false` is tolerated


@dataclass(frozen=True)
class GeneratedImage:
    image: QImage
    seed: str
    model: str
    worker_name: str


@dataclass
class JobStatus:
    """What the docker shows about a job."""

    state: str = SUBMITTING  # a JobState
    request_id: str | None = None
    queue_position: int = 0
    wait_time: int = 0
    progress: float | None = None  # 0..1 when the horde reports it
    finished: int = 0
    total: int = 0
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    wait_reason: WaitReason = WaitReason.NONE
    retry_attempt: int = 0  # > 0 while a passing problem is being retried
    retry_error: str = ""  # that problem, in plain words
    # Cancelled after some images were finished: those are downloaded and kept (state DONE).
    kept_after_cancel: bool = False
    kudos_cost: float = 0.0  # what the horde charges for the request (its submit reply)
    kudos_consumed: float = 0.0  # charged so far (`check`)


def _guarded(handler: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(handler)
    def wrapper(self: HordeJob, *args: Any) -> None:
        if self.status.state in FINAL_STATES:
            return
        try:
            handler(self, *args)
        except Exception as error:
            log.exception("job %s: unexpected error", self.job_id)
            self._fail(f"internal error in the plug-in: {error}")

    return wrapper


class HordeJob(QObject):
    """Submits one payload and follows it to its images. Emits `updated` on every change and
    exactly one of `finished(list[GeneratedImage])`, `failed(str)` or `cancelled()`."""

    updated = pyqtSignal()
    preview = pyqtSignal(QImage)  # the latest preview a worker sent (our horde's extension)
    finished = pyqtSignal(list)
    failed = pyqtSignal(str)
    cancelled = pyqtSignal()

    def __init__(
        self,
        job_id: str,
        client: HordeClient,
        payload: dict[str, Any],
        max_wait_s: float,
        policy: PollPolicy | None = None,
        parent: QObject | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(parent)
        self.job_id = job_id
        self.client = client
        self.payload = payload
        self.max_wait_s = max_wait_s
        self.policy = policy or PollPolicy()
        self.status = JobStatus()
        self.images: list[GeneratedImage] = []
        self._clock = clock
        self._started_at = 0.0
        self._poll_started_at = 0.0
        self._errors = 0
        self._impossible_since: float | None = None
        self._long_poll = False
        self._cancel_requested = False
        self._request: Any = None
        self._decoding: BackgroundTask[list[QImage]] | None = None
        self._preview_request: Any = None
        self._preview_progress: float | None = None  # the progress of the last preview asked
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._poll)

    @property
    def is_active(self) -> bool:
        return self.status.state not in FINAL_STATES

    def start(self) -> None:
        self._started_at = self._clock()
        self._set(SUBMITTING, "sending the request to the horde")
        self._request = self.client.submit(self.payload, self._on_submitted)

    def cancel(self) -> None:
        """Stop following the job and DELETE it on the horde (once its id is known)."""
        if not self.is_active:
            return
        # Cancelled again while the finished images are fetched: keep nothing after all.
        if self.status.kept_after_cancel and self._request is not None:
            self._request.abort()
        self._timer.stop()
        if self._decoding is not None:
            self._decoding.cancel()
            self._decoding = None
        if self.status.request_id is None or self.status.kept_after_cancel:
            # The submit reply is still on its way: cancel it on the horde when it arrives
            # (or the request was already deleted when the finished images were kept).
            self._cancel_requested = True
            self._finish_cancelled()
            return
        if self._request is not None:
            self._request.abort()
            self._request = None
        if self.status.finished > 0:
            # Images already finished are not thrown away: the DELETE's reply carries them
            # (the public horde's behaviour, and ours), so they are decoded and kept.
            self.status.kept_after_cancel = True
            self._set(FETCHING, "cancelled: downloading the images already finished")
            self._request = self.client.cancel(self.status.request_id, self._on_cancel_reply)
            return
        self.client.cancel(self.status.request_id)
        self._finish_cancelled()

    @_guarded
    def _on_cancel_reply(self, result: HttpResult) -> None:
        self._request = None
        try:
            usable = parse_status(result.data).generations if result.ok else ()
        except ReplyError:
            usable = ()
        usable = tuple(g for g in usable if not g.censored and g.state in ("ok", ""))
        if not usable:
            self._finish_cancelled()
            return
        self._decode(list(usable), [])

    def _finish_cancelled(self) -> None:
        self._set(CANCELLED, "cancelled")
        self.cancelled.emit()

    def _set(self, state: str, message: str) -> None:
        self.status.state = state
        self.status.message = message
        self.updated.emit()

    def _fail(self, message: str) -> None:
        if not self.is_active:
            return
        self._timer.stop()
        if self._request is not None:
            self._request.abort()
            self._request = None
        self._set(FAILED, message)
        self.failed.emit(message)

    def _elapsed(self) -> float:
        return self._clock() - self._started_at

    def _on_submitted(self, result: HttpResult) -> None:
        if self._cancel_requested:
            if result.ok:
                with contextlib.suppress(ReplyError):
                    self.client.cancel(parse_submit(result.data).id)
            return
        self._handle_submitted(result)

    @_guarded
    def _handle_submitted(self, result: HttpResult) -> None:
        self._request = None
        if not result.ok and result.rc == KUDOS_UPFRONT:
            # The horde's message says why kudos are needed up front and what would fit.
            detail = result.data.get("message") if isinstance(result.data, dict) else None
            self._fail(f"not enough kudos for this request: {detail or result.error}")
            return
        if not result.ok:
            self._fail(f"could not submit: {result.error}")
            return
        try:
            reply = parse_submit(result.data)
        except ReplyError as error:
            self._fail(f"the horde's reply to the request made no sense: {error}")
            return
        self.status.request_id = reply.id
        self.status.warnings = list(reply.warnings)
        self.status.kudos_cost = reply.kudos
        self._set(QUEUED, "queued on the horde")
        self._schedule(0)

    def _schedule(self, delay_s: float) -> None:
        self._timer.start(max(0, int(delay_s * 1000)))

    @_guarded
    def _poll(self) -> None:
        request_id = self.status.request_id
        assert request_id is not None
        remaining = self.max_wait_s - self._elapsed()
        if remaining <= 0:
            self._give_up()
            return
        wait_s = min(self.policy.long_poll_s, int(remaining)) if self._long_poll else 0
        self._poll_started_at = self._clock()
        self._request = self.client.check(request_id, self._on_checked, wait_s=wait_s)

    def _give_up(self) -> None:
        if self.status.request_id is not None:
            self.client.cancel(self.status.request_id)
        self._fail(
            f"no result after {self.max_wait_s:g} s (the max wait): the request was cancelled."
            " Raise the max wait or try a model with more workers."
        )

    def _poll_error(self, message: str, transient: bool) -> None:
        self._errors += 1
        if not transient or self._errors >= self.policy.max_errors:
            if self.status.request_id is not None:
                self.client.cancel(self.status.request_id)
            self._fail(message)
            return
        self.status.message = f"{message} (retrying, attempt {self._errors})"
        self.status.retry_attempt, self.status.retry_error = self._errors, message
        self.updated.emit()
        self._schedule(self.policy.interval_s * self._errors)

    @_guarded
    def _on_checked(self, result: HttpResult) -> None:
        self._request = None
        if not result.ok:
            self._poll_error(f"lost track of the request: {result.error}", result.transient)
            return
        try:
            check = parse_check(result.data)
        except ReplyError as error:
            self._poll_error(f"the horde's status reply made no sense: {error}", True)
            return
        self._errors = 0
        self.status.retry_attempt, self.status.retry_error = 0, ""
        self._long_poll = check.has_progress_extension
        self._apply_check(check)
        if check.preview_available and not check.done:
            self._fetch_preview(check.progress)
        if check.faulted:
            self._fail("the horde reports that generating these images failed (faulted)")
            return
        if check.done:
            self._set(FETCHING, "downloading the images")
            self._request = self.client.status(self.status.request_id or "", self._on_status)
            return
        if not check.is_possible:
            now = self._clock()
            if self._impossible_since is None:
                self._impossible_since = now
            elif now - self._impossible_since >= self.policy.impossible_grace_s:
                self._give_up_impossible()
                return
        else:
            self._impossible_since = None
        self._schedule(self._next_delay())

    def _fetch_preview(self, progress: float | None) -> None:
        """Ask for the newest preview once per progress step (one request at a time)."""
        if self._preview_request is not None or progress == self._preview_progress:
            return
        self._preview_progress = progress
        self._preview_request = self.client.preview(self.status.request_id or "", self._on_preview)

    def _on_preview(self, result: HttpResult) -> None:
        self._preview_request = None
        # Best effort: no preview yet (404), or a broken one, changes nothing about the job.
        if not self.is_active or not result.ok or not isinstance(result.data, bytes):
            return
        data = result.data
        run_in_background(
            lambda: decode_image(data),
            done=self._emit_preview,
            failed=lambda error: log.info("job %s: unusable preview: %s", self.job_id, error),
        )

    def _emit_preview(self, image: QImage) -> None:
        if self.is_active and self.status.state != FETCHING:
            self.preview.emit(image)

    def _give_up_impossible(self) -> None:
        params = self.payload.get("params", {})
        models = ", ".join(self.payload.get("models") or []) or "any model"
        self.client.cancel(self.status.request_id or "")
        self._fail(
            f"no worker on this horde can take this request ({models},"
            f" {params.get('width')}x{params.get('height')}): choose a model with workers"
            " or a smaller max size"
        )

    def _next_delay(self) -> float:
        took = self._clock() - self._poll_started_at
        if self._long_poll:
            return max(self.policy.min_gap_s, 0.0)
        return max(self.policy.min_gap_s, self.policy.interval_s - took)

    def _apply_check(self, check: CheckReply) -> None:
        status = self.status
        status.queue_position = check.queue_position
        status.wait_time = check.wait_time
        status.finished = check.finished
        status.total = check.total
        status.progress = check.progress
        status.kudos_consumed = check.kudos
        if not check.is_possible:
            state, reason = QUEUED, WaitReason.NO_WORKER
            message = "no worker can take this request right now"
        elif check.processing or check.finished or (check.progress or 0) > 0:
            state, reason, message = PROCESSING, WaitReason.NONE, "generating"
        else:
            state, reason, message = QUEUED, WaitReason.QUEUE, "waiting in the queue"
        status.wait_reason = reason
        self._set(state, message)

    @_guarded
    def _on_status(self, result: HttpResult) -> None:
        self._request = None
        if not result.ok:
            if result.transient and self._errors + 1 < self.policy.max_errors:
                self._errors += 1
                self._request = self.client.status(self.status.request_id or "", self._on_status)
                return
            self._fail(f"could not download the images: {result.error}")
            return
        try:
            status = parse_status(result.data)
        except ReplyError as error:
            self._fail(f"the horde's result reply made no sense: {error}")
            return
        usable = []
        skipped = []
        for generation in status.generations:
            if generation.censored or generation.state not in ("ok", ""):
                skipped.append(generation.state if not generation.censored else "censored")
                continue
            usable.append(generation)
        if not usable:
            why = f" ({', '.join(skipped)})" if skipped else ""
            self._fail(f"the horde finished but sent no usable image{why}")
            return
        self._decode(usable, skipped)

    def _decode(self, usable: list[Any], skipped: list[str]) -> None:
        texts = [generation.img for generation in usable]
        # Decoding a few large images takes tens of milliseconds each: off the GUI thread.
        self._decoding = run_in_background(
            lambda: [decode_base64(text) for text in texts],
            done=functools.partial(self._on_decoded, usable, skipped),
            failed=self._on_decode_failed,
        )

    @_guarded
    def _on_decoded(self, usable: list[Any], skipped: list[str], decoded: list[QImage]) -> None:
        self._decoding = None
        self.images = [
            GeneratedImage(image, generation.seed, generation.model, generation.worker_name)
            for image, generation in zip(decoded, usable, strict=True)
        ]
        note = f", {len(skipped)} skipped ({', '.join(skipped)})" if skipped else ""
        if self.status.kept_after_cancel:
            note += ", kept after cancelling the rest"
        self.status.progress = 1.0
        self._set(DONE, f"{len(self.images)} image(s) received{note}")
        self.finished.emit(self.images)

    @_guarded
    def _on_decode_failed(self, error: Exception) -> None:
        self._decoding = None
        if isinstance(error, ImageTooLargeError):
            self._fail(f"the horde sent an image too large to use: {error}")
        elif isinstance(error, ImageDecodeError):
            self._fail(f"the horde sent a broken image: {error}")
        else:
            log.error("job %s: decoding the images failed", self.job_id, exc_info=error)
            self._fail(f"internal error in the plug-in while decoding the images: {error}")
