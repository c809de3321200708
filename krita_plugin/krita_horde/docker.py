"""The Krita docker: the form, Generate/Cancel, one HordeJob per click, results into layers.

Scripting surface (used by the real-Krita end-to-end test; see docs/plugin.md):
`live_dockers()`, the form's widgets as attributes, `apply_settings(dict)`, `generate() ->
job id`, `cancel()`, `refresh_models()`, and the signals `job_started(job_id)`,
`job_finished(job_id, layer_names)`, `job_failed(job_id, message)`. The job id is the
plug-in's own (known before the horde answers), not the horde's request id.
"""

from __future__ import annotations

import logging
import uuid
import weakref
from dataclasses import dataclass
from typing import Any

from PyQt5.QtCore import QTimer, pyqtSignal
from PyQt5.QtWidgets import QScrollArea

from .adapter import (
    DocumentCanvas,
    DocumentError,
    InsertedResult,
    KritaSettingsStore,
    ResultInserter,
    is_open,
)
from .background import BackgroundTask, run_in_background
from .client import HordeClient
from .form import WIDGET_NAMES, HordeForm
from .geometry import GeometryError
from .job import HordeJob, PollPolicy
from .network import HttpResult, JsonHttp
from .preparation import PreparedJob, build_job, read_canvas
from .replies import ReplyError, parse_models
from .settings import JobSettings, SettingsError, SettingsStore, load_settings, save_settings
from .status_text import ProgressView, describe, progress_view

try:  # Inside Krita; the fallback lets the docker run under pytest without Krita.
    from krita import DockWidget
except ImportError:
    from PyQt5.QtWidgets import QDockWidget as DockWidget

log = logging.getLogger(__name__)

DOCKER_ID = "krita_horde_docker"
# One name everywhere (docker title, plug-in manager, README): "AI Horde" is another docker.
DOCKER_TITLE = "Krita Horde"
SAVE_DELAY_MS = 500
CANCELLED_MESSAGE = "cancelled by the artist"
# Problems in the settings or the image that the artist can fix: shown as they are.
ARTIST_ERRORS = (DocumentError, SettingsError, GeometryError)

_live: weakref.WeakSet[HordeDocker] = weakref.WeakSet()


def live_dockers() -> list[HordeDocker]:
    """Every docker currently alive (one per Krita main window)."""
    return list(_live)


@dataclass
class RunningJob:
    doc: Any
    settings: JobSettings
    # While its payload is built in the background: `preparation` is set, `job` is None.
    preparation: BackgroundTask[PreparedJob] | None = None
    job: HordeJob | None = None
    prepared: PreparedJob | None = None

    @property
    def is_active(self) -> bool:
        if self.job is None:
            return self.preparation is not None
        return self.job.is_active


class HordeDocker(DockWidget):
    job_started = pyqtSignal(str)
    job_finished = pyqtSignal(str, list)
    job_failed = pyqtSignal(str, str)

    def __init__(
        self,
        app: Any = None,
        store: SettingsStore | None = None,
        http: JsonHttp | None = None,
        poll_policy: PollPolicy | None = None,
        load_models: bool = True,
    ) -> None:
        super().__init__()
        if app is None:
            from krita import Krita

            app = Krita.instance()
        self.app = app
        self.store = store or KritaSettingsStore(app)
        self.http = http or JsonHttp(parent=self)
        self.poll_policy = poll_policy
        self.setWindowTitle(DOCKER_TITLE)
        self.setObjectName(DOCKER_ID)
        self.form = HordeForm()
        for name in WIDGET_NAMES:
            setattr(self, name, getattr(self.form, name))
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.form)
        self.setWidget(scroll)
        self.jobs: dict[str, RunningJob] = {}
        self._inserters: dict[str, ResultInserter] = {}
        self._models_request: Any = None
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.timeout.connect(self.save_settings)
        self.form.show_settings(load_settings(self.store))
        self.form.changed.connect(lambda: self._save_timer.start(SAVE_DELAY_MS))
        self.form.generate_button.clicked.connect(self.generate)
        self.form.cancel_button.clicked.connect(self.cancel)
        self.form.refresh_models_button.clicked.connect(self.refresh_models)
        self.form.url_edit.editingFinished.connect(self.refresh_models)
        _live.add(self)
        if load_models:
            # After Krita has finished building its windows: the list arrives asynchronously.
            QTimer.singleShot(0, self.refresh_models)

    # Krita calls this when the active view changes; jobs read the active document when
    # they start, so nothing is kept per canvas.
    def canvasChanged(self, canvas: Any) -> None:
        pass

    # --- scripting surface ---------------------------------------------------------------

    def apply_settings(self, values: dict[str, Any]) -> None:
        """Set widgets by field name (see form.FIELD_WIDGETS); persists them."""
        self.form.apply_settings(values)
        if "url" in values:
            self.refresh_models()
        self.save_settings()

    def save_settings(self) -> None:
        self._save_timer.stop()
        save_settings(self.store, self.form.settings())

    def active_jobs(self) -> list[str]:
        return [job_id for job_id, run in self.jobs.items() if run.is_active]

    def generate(self) -> str:
        """Start a job from the current settings and the active document; returns its id at
        once. The document is read now (Krita's API: GUI thread); the payload is built in a
        background thread and the job submitted when it is ready. Problems, found now or
        while building, are reported through `job_failed`."""
        job_id = uuid.uuid4().hex[:12]
        try:
            self.save_settings()
            settings = self.form.settings()
            canvas = DocumentCanvas(self.app.activeDocument())
            read = read_canvas(canvas, settings)
        except ARTIST_ERRORS as error:
            self._show_error(job_id, f"{error}")
            return job_id
        except Exception as error:
            log.exception("reading the document for a job failed")
            self._show_error(job_id, f"could not read the document: {error}")
            return job_id
        run = RunningJob(canvas.doc, settings)
        self.jobs[job_id] = run
        run.preparation = run_in_background(
            lambda: build_job(read),
            done=lambda prepared, job_id=job_id: self._on_prepared(job_id, prepared),
            failed=lambda error, job_id=job_id: self._on_preparation_failed(job_id, error),
        )
        self._update_status()
        return job_id

    def cancel(self) -> None:
        """Cancel every running job of this docker (each is DELETEd on the horde; a job
        still being prepared is dropped before it is sent)."""
        for job_id in self.active_jobs():
            run = self.jobs[job_id]
            if run.job is not None:
                run.job.cancel()
            elif run.preparation is not None:
                run.preparation.cancel()
                run.preparation = None
                self._on_failed(job_id, CANCELLED_MESSAGE)

    def refresh_models(self) -> None:
        """Reload the model list from the horde (`/status/models`)."""
        settings = self.form.settings()
        if not settings.base_url.startswith(("http://", "https://")):
            return
        if self._models_request is not None:
            self._models_request.abort()
        client = HordeClient(settings.base_url, settings.apikey, http=self.http, parent=self)
        self.form.refresh_models_button.setEnabled(False)
        self._models_request = client.models(self._on_models)

    # --- internals -----------------------------------------------------------------------

    def _on_models(self, result: HttpResult) -> None:
        self._models_request = None
        self.form.refresh_models_button.setEnabled(True)
        try:
            if not result.ok:
                raise ReplyError(result.error)
            models = parse_models(result.data)
        except ReplyError as error:
            self._show_info(f"Could not load the model list: {error}")
            return
        self.form.set_models(models)
        self._show_info(f"{len(models)} model(s) available on the horde.")

    def _show_info(self, text: str) -> None:
        """Status text that must not hide a running job's status."""
        if not self.active_jobs():
            self.form.status_label.setText(text)

    def _on_prepared(self, job_id: str, prepared: PreparedJob) -> None:
        run = self.jobs[job_id]
        run.preparation = None
        if not is_open(self.app, run.doc):
            self._on_failed(job_id, "the document was closed before the job was sent")
            return
        settings = run.settings
        client = HordeClient(settings.base_url, settings.apikey, http=self.http, parent=self)
        job = HordeJob(
            job_id,
            client,
            prepared.payload,
            settings.max_wait,
            policy=self.poll_policy,
            parent=self,
        )
        run.job, run.prepared = job, prepared
        job.updated.connect(self._update_status)
        job.finished.connect(lambda images, job_id=job_id: self._on_images(job_id, images))
        job.failed.connect(lambda message, job_id=job_id: self._on_failed(job_id, message))
        job.cancelled.connect(lambda job_id=job_id: self._on_failed(job_id, CANCELLED_MESSAGE))
        self.job_started.emit(job_id)
        job.start()
        self._update_status()

    def _on_preparation_failed(self, job_id: str, error: Exception) -> None:
        self.jobs[job_id].preparation = None
        if isinstance(error, ARTIST_ERRORS):
            self._on_failed(job_id, f"{error}")
            return
        log.error("preparing job %s failed", job_id, exc_info=error)
        self._on_failed(job_id, f"could not prepare the image for the horde: {error}")

    def _on_images(self, job_id: str, images: list) -> None:
        run = self.jobs[job_id]
        assert run.prepared is not None
        inserter = ResultInserter(
            self.app,
            run.doc,
            run.prepared,
            images,
            done=lambda result, job_id=job_id: self._on_inserted(job_id, result),
            failed=lambda message, job_id=job_id: self._on_failed(job_id, message),
        )
        self._inserters[job_id] = inserter
        inserter.run()

    def _on_inserted(self, job_id: str, result: InsertedResult) -> None:
        self._inserters.pop(job_id, None)
        count = len(result.layer_names)
        self.form.status_label.setText(
            f"Done: {count} layer(s) added in the group “{result.group_name}”."
        )
        self._update_buttons()
        self._settle_progress()
        self.job_finished.emit(job_id, list(result.layer_names))

    def _on_failed(self, job_id: str, message: str) -> None:
        self._inserters.pop(job_id, None)
        self._show_error(job_id, message)

    def _show_error(self, job_id: str, message: str) -> None:
        text = "Cancelled." if message == CANCELLED_MESSAGE else f"Error: {message}"
        self.form.status_label.setText(text)
        self._update_buttons()
        self._settle_progress()
        self.job_failed.emit(job_id, message)

    def _settle_progress(self) -> None:
        """Hide the bar once no job runs any more (no "100%" after an error)."""
        if self.active_jobs():
            self._update_status()
            return
        self._show_progress(ProgressView.hidden())

    def _update_buttons(self) -> None:
        self.form.cancel_button.setEnabled(bool(self.active_jobs()))

    def _update_status(self) -> None:
        active = self.active_jobs()
        self._update_buttons()
        if not active:
            return
        job = self.jobs[active[-1]].job
        if job is None:  # its payload is still being built: said in words, no bar
            text, view = "Preparing the image…", ProgressView.hidden()
        else:
            text, view = describe(job.status), progress_view(job.status)
        if len(active) > 1:
            text = f"[{len(active)} jobs] {text}"
        self.form.status_label.setText(text)
        self._show_progress(view)

    def _show_progress(self, view: ProgressView) -> None:
        """The bar as `view` says, painted in a later event-loop turn: QProgressBar.setValue
        repaints at once (synchronously), which inside Krita took 20-25 ms of the GUI thread
        on every poll."""
        bar = self.form.progress_bar
        if bar.isVisibleTo(bar.parentWidget()) != view.visible:
            bar.setVisible(view.visible)
        if not view.visible:
            return
        maximum, value = (0, 0) if view.percent is None else (100, view.percent)
        if (bar.maximum(), bar.value()) == (maximum, value):
            return
        bar.setUpdatesEnabled(False)  # the synchronous repaint becomes a no-op ...
        try:
            bar.setRange(0, maximum)
            bar.setValue(value)
        finally:
            bar.setUpdatesEnabled(True)  # ... and this schedules an ordinary paint


def register(krita_module: Any) -> None:
    """Add the docker factory to Krita (called from __init__ inside Krita only)."""
    factory = krita_module.DockWidgetFactory(
        DOCKER_ID, krita_module.DockWidgetFactoryBase.DockRight, HordeDocker
    )
    krita_module.Krita.instance().addDockWidgetFactory(factory)
