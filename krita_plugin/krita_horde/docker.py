"""The Krita docker: the form, the plan line and kudos, Generate/Cancel, the queue and the
history views. The jobs live in a JobQueue (jobs.py) the docker observes.

Scripting surface (used by the real-Krita end-to-end tests; see docs/plugin.md):
`live_dockers()`, the form's widgets as attributes, `apply_settings(dict)`, `generate() ->
job id`, `outpaint(left, top, right, bottom) -> job id`, `cancel(job_id=None)`,
`refresh_models()`, `refresh_balance()`, `update_plan()`, the history actions, and the signals
`job_started(job_id)`, `job_finished(job_id, layer_names)`, `job_failed(job_id, message)`.
The job id is the plug-in's own (known before the horde answers), not the horde's request id.
"""

from __future__ import annotations

import logging
import uuid
import weakref
from typing import Any

from PyQt5.QtCore import QTimer, pyqtSignal

from .capacity import max_pixels_by_model, model_capacity
from .client import HordeClient
from .document import DocumentCanvas, OutpaintCanvas
from .form import WIDGET_NAMES, HordeForm
from .geometry import Extent, Outpaint, Sides, outpaint_plan, overflow
from .history_view import HistoryView
from .job import KUDOS_UPFRONT, PollPolicy
from .jobs import ARTIST_ERRORS, JobPhase, JobQueue, QueuedJob
from .network import HttpResult, JsonHttp
from .payload import INPAINTING, TXT2IMG, JobSources, build_payload
from .plan import plan_job, plan_text
from .preparation import read_canvas
from .queue_view import QueueView, job_progress, job_status_text, set_progress
from .replies import (
    ModelInfo,
    ReplyError,
    WorkerInfo,
    parse_models,
    parse_price,
    parse_user,
    parse_workers,
)
from .settings import JobSettings, SettingsStore, load_settings, save_settings
from .settings_store import KritaSettingsStore
from .status_text import ProgressView

try:  # Inside Krita; the fallback lets the docker run under pytest without Krita.
    from krita import DockWidget
except ImportError:
    from PyQt5.QtWidgets import QDockWidget as DockWidget

log = logging.getLogger(__name__)

DOCKER_ID = "krita_horde_docker"
# One name everywhere (docker title, plug-in manager, README): "AI Horde" is another docker.
DOCKER_TITLE = "Krita Horde"
SAVE_DELAY_MS = 500
PLAN_INTERVAL_MS = 1500
PLAN_DELAY_MS = 300
PRICE_DELAY_MS = 700

_live: weakref.WeakSet[HordeDocker] = weakref.WeakSet()


def live_dockers() -> list[HordeDocker]:
    """Every docker currently alive (one per Krita main window); a closed window's docker
    whose Qt object is gone but whose Python wrapper lingers is left out."""
    alive = []
    for docker in list(_live):
        try:
            docker.objectName()
        except RuntimeError:  # the wrapped C++ object was deleted
            continue
        alive.append(docker)
    return alive


class HordeDocker(DockWidget):
    """The form, Generate/Cancel and the job queue's view. The jobs themselves live in a
    `JobQueue` (jobs.py) that this widget observes."""

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
        self.setWindowTitle(DOCKER_TITLE)
        self.setObjectName(DOCKER_ID)
        self.form = HordeForm()
        for name in WIDGET_NAMES:
            setattr(self, name, getattr(self.form, name))
        self.queue = JobQueue(app, self.http, poll_policy, parent=self)
        self.queue_view = QueueView(self.queue)
        self.form.add_queue_view(self.queue_view)
        self.history = self.queue.history
        self.history_view = HistoryView(self.history)
        self.form.add_queue_view(self.history_view)
        self.history_view.rerun_requested.connect(self.rerun)
        self.history_view.settings_requested.connect(self.use_settings_of)
        self.history.applied.connect(self._on_applied)
        self.history.apply_failed.connect(self._on_apply_failed)
        # The form scrolls its lower part itself: Generate stays visible in a short docker.
        self.setWidget(self.form)
        self._models_request: Any = None
        self._workers_request: Any = None
        self._models: list[ModelInfo] = []
        # The live workers (None: not loaded): jobs are sized so one of them can take them.
        self.workers: list[WorkerInfo] | None = None
        self._price_request: Any = None
        self._price_key: Any = None
        self.price: float | None = None  # kudos the planned job costs (dry run)
        self.balance: float | None = None  # the user's kudos (find_user)
        self._price_refused = ""  # the horde's KudosUpfront message for the planned job
        self._balance_request: Any = None
        self._price_timer = QTimer(self)
        self._price_timer.setSingleShot(True)
        self._price_timer.timeout.connect(self._request_price)
        self._planned: tuple[JobSettings, Extent, str] | None = None
        self._plan_timer = QTimer(self)
        self._plan_timer.setInterval(PLAN_INTERVAL_MS)
        self._plan_timer.timeout.connect(self._plan_tick)
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.timeout.connect(self.save_settings)
        self.form.show_settings(load_settings(self.store))
        self.form.changed.connect(self._save_soon)
        self.form.generate_button.clicked.connect(self._generate_clicked)
        self.form.cancel_button.clicked.connect(self._cancel_clicked)
        self.form.refresh_models_button.clicked.connect(self.refresh_models)
        self.form.outpaint_button.clicked.connect(self._outpaint_clicked)
        self.form.url_edit.editingFinished.connect(self.refresh_models)
        self.queue.changed.connect(self._on_job_changed)
        self.queue.started.connect(self.job_started)
        self.queue.finished.connect(self._on_finished)
        self.queue.failed.connect(self._on_failed)
        # Typing in the prompt must not read the canvas on every key: the plan follows a
        # moment after the last change.
        self._plan_soon = QTimer(self)
        self._plan_soon.setSingleShot(True)
        self._plan_soon.timeout.connect(self.update_plan)
        self.form.changed.connect(self._replan_soon)
        self.queue.changed.connect(self._on_queue_changed)
        _live.add(self)
        # The selection and the canvas change without telling a docker: look again now and
        # then (cheap: bounds, and the selection's bytes up to a size limit).
        self._plan_timer.start()
        QTimer.singleShot(0, self.update_plan)
        if load_models:
            # After Krita has finished building its windows: the list arrives asynchronously.
            QTimer.singleShot(0, self.refresh_models)

    def _on_apply_failed(self, item_id: str, message: str) -> None:
        self.form.status_label.setText(f"Error: {message}")

    def _plan_tick(self) -> None:
        if self.isVisible():  # a hidden docker need not look at the canvas
            self.update_plan()

    def _replan_soon(self) -> None:
        self._plan_soon.start(PLAN_DELAY_MS)

    def _save_soon(self) -> None:
        self._save_timer.start(SAVE_DELAY_MS)

    def _generate_clicked(self) -> None:
        self.generate()

    def _cancel_clicked(self) -> None:
        self.cancel()

    def _on_queue_changed(self, job_id: str) -> None:
        self._update_buttons()

    # Krita calls this when the active view changes; jobs read the active document when
    # they start, so nothing is kept per canvas.
    def canvasChanged(self, canvas: Any) -> None:
        pass

    # --- scripting surface ---------------------------------------------------------------

    @property
    def jobs(self) -> dict[str, QueuedJob]:
        return self.queue.entries

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
        return self.queue.active()

    def outpaint(self, left: int = 0, top: int = 0, right: int = 0, bottom: int = 0) -> str:
        """Extend the active document's canvas and inpaint the new area with the pixels beside
        it as context; returns the job id at once. With a selection reaching past the canvas
        edges, it is extended that far instead of by the given sides. The canvas is resized
        once, as one step of Krita's undo history (Image › Resize Canvas); the job follows in
        the next event-loop turn, once Krita has done the resize."""
        job_id = uuid.uuid4().hex[:12]
        try:
            settings = self.form.settings().with_values(mode=INPAINTING)
            settings.validate()
            canvas = DocumentCanvas(self.app.activeDocument())
            sides = Sides(left, top, right, bottom)
            selection = canvas.selection_bounds()
            if selection is not None:
                reaching = overflow(canvas.extent(), selection)
                if not reaching.is_empty():
                    sides = reaching
            plan = outpaint_plan(canvas.extent(), sides)
        except ARTIST_ERRORS as error:
            self.queue.fail_now(job_id, f"{error}")
            return job_id
        doc = canvas.doc
        try:
            doc.resizeImage(-sides.left, -sides.top, plan.canvas.width, plan.canvas.height)
            # The resize runs as a Krita stroke: wait for it once before reading the pixels.
            doc.waitForDone()
        except Exception as error:
            log.exception("resizing the canvas failed")
            self.queue.fail_now(job_id, f"could not extend the canvas: {error}")
            return job_id
        QTimer.singleShot(0, lambda: self._start_outpaint(job_id, doc, plan, settings))
        return job_id

    def _start_outpaint(self, job_id: str, doc: Any, plan: Outpaint, settings: JobSettings) -> None:
        try:
            canvas = OutpaintCanvas(DocumentCanvas(doc), plan)
            capacity = model_capacity(self.workers, settings.model, INPAINTING, settings.nsfw)
            read = read_canvas(canvas, settings, capacity.max_pixels)
        except ARTIST_ERRORS as error:
            self.queue.fail_now(job_id, f"{error}")
            return
        except Exception as error:
            log.exception("reading the document for outpainting failed")
            self.queue.fail_now(job_id, f"could not read the document: {error}")
            return
        self.queue.add(job_id, doc, read)

    def _outpaint_clicked(self) -> None:
        form = self.form
        self.outpaint(
            form.extend_left_spin.value(),
            form.extend_top_spin.value(),
            form.extend_right_spin.value(),
            form.extend_bottom_spin.value(),
        )

    def apply_result(self, item_id: str) -> None:
        """Add a history item as a layer at its job's selection."""
        self.history.apply(item_id)

    def rerun(self, item_id: str) -> str | None:
        """A new job with a history item's settings (prompt, seed, sizes…) on the current
        image and selection, through the current connection; the form is left as it is."""
        item = self.history.items.get(item_id)
        if item is None:
            return None
        return self.generate(settings=self._with_connection(item.prepared.settings))

    def use_settings_of(self, item_id: str) -> None:
        """Put a history item's settings into the form (the connection stays)."""
        item = self.history.items.get(item_id)
        if item is not None:
            self.form.show_settings(self._with_connection(item.prepared.settings))
            self.save_settings()

    def _with_connection(self, settings: JobSettings) -> JobSettings:
        current = self.form.settings()
        return settings.with_values(
            url=current.url,
            apikey=current.apikey,
            max_wait=current.max_wait,
            insert_all=current.insert_all,
            ca_file=current.ca_file,
        )

    def _on_applied(self, item_id: str, layer_names: list) -> None:
        self.form.status_label.setText(f"Applied: {', '.join(layer_names)}.")

    def generate(self, settings: JobSettings | None = None) -> str:
        """Start a job from the current settings and the active document; returns its id at
        once. The document is read now (Krita's API: GUI thread); the payload is built in a
        background thread and the job submitted when it is ready. Problems, found now or
        while building, are reported through `job_failed`. Every click adds a job to the
        queue, next to those still running."""
        job_id = uuid.uuid4().hex[:12]
        try:
            self.save_settings()
            if settings is None:
                settings = self.form.settings()
            canvas = DocumentCanvas(self.app.activeDocument())
            # A chosen mode narrows the workers (img2img, painting); "auto" is decided later.
            mode = None if settings.mode == "auto" else settings.mode
            capacity = model_capacity(self.workers, settings.model, mode, settings.nsfw)
            read = read_canvas(canvas, settings, capacity.max_pixels)
        except ARTIST_ERRORS as error:
            self.queue.fail_now(job_id, f"{error}")
            return job_id
        except Exception as error:
            log.exception("reading the document for a job failed")
            self.queue.fail_now(job_id, f"could not read the document: {error}")
            return job_id
        self.queue.add(job_id, canvas.doc, read)
        return job_id

    def cancel(self, job_id: str | None = None) -> None:
        """Cancel one job, or every running job of this docker (each is DELETEd on the horde;
        a job still being prepared is dropped before it is sent)."""
        if job_id is None:
            self.queue.cancel_all()
        else:
            self.queue.cancel(job_id)

    def refresh_models(self) -> None:
        """Reload the model list from the horde (`/status/models`)."""
        settings = self.form.settings()
        if not settings.base_url.startswith(("http://", "https://")):
            return
        for request in (self._models_request, self._workers_request):
            if request is not None:
                request.abort()
        client = HordeClient.for_settings(settings, self.http, parent=self)
        self.form.refresh_models_button.setEnabled(False)
        self._models_request = client.models(self._on_models)
        self._workers_request = client.workers(self._on_workers)
        self.refresh_balance()

    def update_plan(self) -> None:
        """Show what Generate would do now (mode and why, sizes, workers) and hide the fields
        that do not apply to that mode."""
        settings = self.form.settings()
        try:
            canvas = DocumentCanvas(self.app.activeDocument())
            plan = plan_job(canvas, settings, self.workers)
        except ARTIST_ERRORS as error:
            self.form.plan_label.setText(f"{error}")
            self.form.show_denoise(settings.mode != TXT2IMG)
            return
        except Exception as error:  # never let a passing look at the canvas break the docker
            log.exception("planning the job failed")
            self.form.plan_label.setText(f"could not read the document: {error}")
            return
        self.form.plan_label.setText(plan_text(plan, settings.model))
        self.form.show_denoise(plan.mode != TXT2IMG)
        self._planned = (settings, plan.area.generation, plan.mode or TXT2IMG)
        key = (settings.base_url, settings.model, plan.area.generation, plan.mode, settings.steps,
               settings.n, settings.sampler, settings.karras, settings.nsfw)  # fmt: skip
        if key != self._price_key:
            # Priced once the artist stopped changing things for a moment.
            self._price_key = key
            self._price_timer.start(PRICE_DELAY_MS)

    def refresh_balance(self) -> None:
        """Ask the horde for the user's kudos (`/find_user`)."""
        settings = self.form.settings()
        if not settings.base_url.startswith(("http://", "https://")):
            return
        if self._balance_request is not None:
            self._balance_request.abort()
        client = HordeClient.for_settings(settings, self.http, parent=self)
        self._balance_request = client.find_user(self._on_balance)

    def _request_price(self) -> None:
        if self._planned is None:
            return
        settings, generation, mode = self._planned
        if not settings.base_url.startswith(("http://", "https://")):
            return
        if self._price_request is not None:
            self._price_request.abort()
        client = HordeClient.for_settings(settings, self.http, parent=self)
        # Without the source image (it is only read when the job is sent): the price of a
        # request of this size, steps and number of images, which is what the horde charges by.
        priced = settings.with_values(prompt=settings.prompt.strip() or "a picture")
        payload = build_payload(priced, generation, TXT2IMG, JobSources())
        if mode != TXT2IMG:
            payload["params"]["denoising_strength"] = settings.denoise
        self._price_request = client.price(payload, self._on_price)

    def _on_price(self, result: HttpResult) -> None:
        self._price_request = None
        self._price_refused = ""
        if result.rc == KUDOS_UPFRONT and isinstance(result.data, dict):
            # Said before Generate: the horde's message says why and what would need none.
            self._price_refused = str(result.data.get("message") or result.error)
        try:
            if not result.ok:
                raise ReplyError(result.error)
            self.price = parse_price(result.data)
        except ReplyError as error:
            log.info("no price for the planned job: %s", error)
            self.price = None
        self._show_kudos()

    def _on_balance(self, result: HttpResult) -> None:
        self._balance_request = None
        try:
            if not result.ok:
                raise ReplyError(result.error)
            self.balance = parse_user(result.data).kudos
        except ReplyError as error:
            log.info("no kudos balance: %s", error)
            self.balance = None
        self._show_kudos()

    def _show_kudos(self) -> None:
        parts = []
        if self._price_refused:
            parts.append(f"Not enough kudos for this request: {self._price_refused}")
        elif self.price is not None:
            parts.append(f"Costs about {self.price:g} kudos")
        if self.balance is not None:
            parts.append(f"your balance: {self.balance:,.0f} kudos")
        text = " · ".join(parts)
        self.form.kudos_label.setText(text[:1].upper() + text[1:])

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
        self._models = models
        self._show_models()
        self._show_info(f"{len(models)} model(s) available on the horde.")

    def _on_workers(self, result: HttpResult) -> None:
        self._workers_request = None
        try:
            if not result.ok:
                raise ReplyError(result.error)
            self.workers = parse_workers(result.data)
        except ReplyError as error:
            # Without them jobs are simply not sized to the workers; nothing else breaks.
            log.warning("could not load the workers: %s", error)
            return
        self._show_models()
        self.update_plan()

    def _show_models(self) -> None:
        limits = max_pixels_by_model(self.workers) if self.workers is not None else None
        self.form.set_models(self._models, limits)

    def _show_info(self, text: str) -> None:
        """Status text that must not hide a running job's status."""
        if not self.active_jobs():
            self.form.status_label.setText(text)

    def _on_job_changed(self, job_id: str) -> None:
        self._update_status()

    def _on_finished(self, job_id: str, layer_names: list) -> None:
        entry = self.queue.entries[job_id]
        self.form.status_label.setText(f"Done: {entry.message}.")
        self._settle()
        self.refresh_balance()  # the job was paid for
        self.job_finished.emit(job_id, layer_names)

    def _on_failed(self, job_id: str, message: str) -> None:
        entry = self.queue.entries.get(job_id)  # None: refused before it was queued
        cancelled = entry is not None and entry.phase == JobPhase.CANCELLED
        text = "Cancelled." if cancelled else f"Error: {message}"
        self.form.status_label.setText(text)
        self._settle()
        self.job_failed.emit(job_id, message)

    def _settle(self) -> None:
        """After a job ended: the newest running job's status, or no bar when none runs."""
        if self.active_jobs():
            self._update_status()
            return
        self._update_buttons()
        self._show_progress(ProgressView.hidden())

    def _update_buttons(self) -> None:
        self.form.cancel_button.setEnabled(bool(self.active_jobs()))

    def _update_status(self) -> None:
        active = self.active_jobs()
        self._update_buttons()
        if not active:
            return
        entry = self.queue.entries[active[-1]]
        text = job_status_text(entry)
        if len(active) > 1:
            text = f"[{len(active)} jobs] {text}"
        self.form.status_label.setText(text)
        self._show_progress(job_progress(entry))

    def _show_progress(self, view: ProgressView) -> None:
        """The bar as `view` says, painted in a later event-loop turn: QProgressBar.setValue
        repaints at once (synchronously), which inside Krita took 20-25 ms of the GUI thread
        on every poll."""
        set_progress(self.form.progress_bar, view)


def register(krita_module: Any) -> None:
    """Add the docker factory to Krita (called from __init__ inside Krita only)."""
    factory = krita_module.DockWidgetFactory(
        DOCKER_ID, krita_module.DockWidgetFactoryBase.DockRight, HordeDocker
    )
    krita_module.Krita.instance().addDockWidgetFactory(factory)
    from .actions import make_extension

    krita_module.Krita.instance().addExtension(make_extension(krita_module))
