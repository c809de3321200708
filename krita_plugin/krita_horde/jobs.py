"""The docker's jobs as a model the widget observes: each Generate adds a numbered job that is
prepared (background), sent and followed (HordeJob), and whose results are put into its
document (ResultInserter). The widget only renders `JobQueue.entries` and forwards clicks;
no widget code lives here, so the orchestration is tested without the docker.

Phases (`JobPhase`): preparing → on_horde (the HordeJob's own states: submitting, queued,
processing, fetching) → inserting → done, and from anywhere failed or cancelled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from PyQt5.QtCore import QObject, pyqtSignal
from PyQt5.QtGui import QImage

from .background import BackgroundTask, run_in_background
from .client import HordeClient
from .document import DocumentError, is_open
from .geometry import GeometryError
from .history import History
from .inserter import InsertedResult, ResultInserter
from .job import GeneratedImage, HordeJob, JobStatus, PollPolicy
from .network import JsonHttp
from .preparation import CanvasRead, PreparedJob, build_job
from .preview import PreviewLayer
from .settings import JobSettings, SettingsError

log = logging.getLogger(__name__)

CANCELLED_MESSAGE = "cancelled by the artist"
# Problems in the settings or the image that the artist can fix: shown as they are.
ARTIST_ERRORS = (DocumentError, SettingsError, GeometryError)


class JobPhase(str, Enum):
    PREPARING = "preparing"  # the payload is built in a background thread
    ON_HORDE = "on_horde"  # sent: see the HordeJob's status for where it is
    INSERTING = "inserting"  # the images are being put into the document
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_PHASES = (JobPhase.PREPARING, JobPhase.ON_HORDE, JobPhase.INSERTING)


@dataclass
class QueuedJob:
    """One Generate click. `number` is shown in the queue and in the result group's name, so
    the artist can tell which row made which group."""

    job_id: str
    number: int
    doc: Any
    settings: JobSettings
    phase: JobPhase = JobPhase.PREPARING
    preparation: BackgroundTask[PreparedJob] | None = None
    job: HordeJob | None = None
    prepared: PreparedJob | None = None
    inserter: ResultInserter | None = None
    result: InsertedResult | None = None
    preview: PreviewLayer | None = None  # the live preview's temporary layer, once one came
    images: list[GeneratedImage] = field(default_factory=list)  # while being inserted
    message: str = ""  # the error (failed) or the result (done), in plain words

    @property
    def is_active(self) -> bool:
        return self.phase in ACTIVE_PHASES

    @property
    def horde_status(self) -> JobStatus | None:
        return self.job.status if self.job is not None else None


class JobQueue(QObject):
    """Every job of one docker, oldest first. Signals carry the job id; `changed` fires on
    any change of any job (the widget re-renders that job's row)."""

    changed = pyqtSignal(str)
    started = pyqtSignal(str)  # submitted to the horde
    finished = pyqtSignal(str, list)  # layer names, once they are in the document
    failed = pyqtSignal(str, str)  # any failure, including cancellation

    def __init__(
        self,
        app: Any,
        http: JsonHttp,
        poll_policy: PollPolicy | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.app = app
        self.http = http
        self.poll_policy = poll_policy
        self.entries: dict[str, QueuedJob] = {}
        self._next_number = 1
        # Every job's images are kept here (applied or not).
        self.history = History(app, parent=self)

    def active(self) -> list[str]:
        return [job_id for job_id, entry in self.entries.items() if entry.is_active]

    def add(self, job_id: str, doc: Any, read: CanvasRead) -> QueuedJob:
        """Queue a job from what was read of `doc`; its payload is built in the background and
        it is sent once ready."""
        entry = QueuedJob(job_id, self._next_number, doc, read.settings)
        self._next_number += 1
        self.entries[job_id] = entry
        entry.preparation = run_in_background(
            lambda: build_job(read),
            done=lambda prepared: self._on_prepared(entry, prepared),
            failed=lambda error: self._on_preparation_failed(entry, error),
        )
        self.changed.emit(job_id)
        return entry

    def fail_now(self, job_id: str, message: str) -> None:
        """A job refused before it was queued (no document, bad settings): reported only."""
        self.failed.emit(job_id, message)

    def cancel(self, job_id: str) -> None:
        """Cancel one job: DELETEd on the horde once sent, dropped before it is sent."""
        entry = self.entries.get(job_id)
        if entry is None or not entry.is_active:
            return
        if entry.job is not None and entry.job.is_active:
            entry.job.cancel()  # its `cancelled` (or `finished` with kept images) follows
        elif entry.preparation is not None:
            entry.preparation.cancel()
            entry.preparation = None
            self._end_failed(entry, CANCELLED_MESSAGE, JobPhase.CANCELLED)

    def cancel_all(self) -> None:
        for job_id in self.active():
            self.cancel(job_id)

    # --- internals -----------------------------------------------------------------------

    def _on_prepared(self, entry: QueuedJob, prepared: PreparedJob) -> None:
        entry.preparation = None
        if not is_open(self.app, entry.doc):
            self._end_failed(entry, "the document was closed before the job was sent")
            return
        settings = entry.settings
        client = HordeClient.for_settings(settings, self.http, parent=self)
        job = HordeJob(
            entry.job_id,
            client,
            prepared.payload,
            settings.max_wait,
            policy=self.poll_policy,
            parent=self,
        )
        entry.job, entry.prepared, entry.phase = job, prepared, JobPhase.ON_HORDE
        job.updated.connect(lambda: self.changed.emit(entry.job_id))
        job.preview.connect(lambda image: self._on_preview(entry, image))
        job.finished.connect(lambda images: self._on_images(entry, images))
        job.failed.connect(lambda message: self._end_failed(entry, message))
        job.cancelled.connect(
            lambda: self._end_failed(entry, CANCELLED_MESSAGE, JobPhase.CANCELLED)
        )
        self.started.emit(entry.job_id)
        job.start()
        self.changed.emit(entry.job_id)

    def _on_preview(self, entry: QueuedJob, image: QImage) -> None:
        if entry.phase != JobPhase.ON_HORDE or entry.prepared is None:
            return
        if entry.preview is None:
            prepared = entry.prepared
            entry.preview = PreviewLayer(
                self.app, entry.doc, prepared.area, prepared.pixel_format, entry.number
            )
        entry.preview.show(image)

    def _drop_preview(self, entry: QueuedJob) -> None:
        if entry.preview is not None:
            entry.preview.remove()

    def _on_preparation_failed(self, entry: QueuedJob, error: Exception) -> None:
        entry.preparation = None
        if isinstance(error, ARTIST_ERRORS):
            self._end_failed(entry, f"{error}")
            return
        log.error("preparing job %s failed", entry.job_id, exc_info=error)
        self._end_failed(entry, f"could not prepare the image for the horde: {error}")

    def _on_images(self, entry: QueuedJob, images: list) -> None:
        assert entry.prepared is not None
        if not entry.settings.insert_all:
            # The images wait in the history until the artist applies one.
            self._drop_preview(entry)
            self.history.add(entry.number, images, entry.prepared, entry.doc, applied=False)
            entry.phase = JobPhase.DONE
            entry.message = f"{len(images)} image(s) in the history: apply one to add it"
            self.changed.emit(entry.job_id)
            self.finished.emit(entry.job_id, [])
            return
        entry.images = list(images)
        entry.phase = JobPhase.INSERTING
        entry.inserter = ResultInserter(
            self.app,
            entry.doc,
            entry.prepared,
            images,
            done=lambda result: self._on_inserted(entry, result),
            failed=lambda message: self._end_failed(entry, message),
            number=entry.number,
        )
        self.changed.emit(entry.job_id)
        entry.inserter.run()

    def _on_inserted(self, entry: QueuedJob, result: InsertedResult) -> None:
        self._drop_preview(entry)  # the results replace it
        entry.inserter, entry.result, entry.phase = None, result, JobPhase.DONE
        assert entry.prepared is not None
        self.history.add(entry.number, entry.images, entry.prepared, entry.doc, applied=True)
        entry.message = (
            f"{len(result.layer_names)} layer(s) added in the group “{result.group_name}”"
        )
        self.changed.emit(entry.job_id)
        self.finished.emit(entry.job_id, list(result.layer_names))

    def _end_failed(
        self, entry: QueuedJob, message: str, phase: JobPhase = JobPhase.FAILED
    ) -> None:
        if not entry.is_active:
            return
        entry.inserter = None
        self._drop_preview(entry)
        entry.phase = phase
        entry.message = message
        self.changed.emit(entry.job_id)
        self.failed.emit(entry.job_id, message)
