"""The docker's view of its job queue: one row per job (number, prompt, status in words, a bar
while it is generated, its own Cancel), redrawn when the JobQueue model says a job changed."""

from __future__ import annotations

from PyQt5.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .jobs import JobPhase, JobQueue, QueuedJob
from .status_text import ProgressView, describe, progress_view

PROMPT_CHARS = 30
# Ended jobs stay listed (so the artist sees what became of them) up to this many.
KEEP_ENDED = 5


def _short(text: str, limit: int = PROMPT_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def job_status_text(entry: QueuedJob) -> str:
    """Where one job is, in words, from its phase and its horde status fields."""
    if entry.phase == JobPhase.PREPARING:
        return "Preparing the image…"
    if entry.phase == JobPhase.INSERTING:
        return "Adding the layers…"
    if entry.phase == JobPhase.DONE:
        return f"Done: {entry.message}."
    if entry.phase == JobPhase.CANCELLED:
        return "Cancelled."
    if entry.phase == JobPhase.FAILED:
        return f"Error: {entry.message}"
    status = entry.horde_status
    return describe(status) if status is not None else ""


def job_line(entry: QueuedJob) -> str:
    text = f"#{entry.number} {_short(entry.settings.prompt)} — {job_status_text(entry)}"
    status = entry.horde_status
    if status is not None and status.kudos_cost:
        text += f" · {status.kudos_cost:g} kudos"
        if entry.is_active and status.kudos_consumed:
            text += f" ({status.kudos_consumed:g} used so far)"
    return text


def job_progress(entry: QueuedJob) -> ProgressView:
    status = entry.horde_status
    if entry.phase != JobPhase.ON_HORDE or status is None:
        return ProgressView.hidden()
    return progress_view(status)


def set_progress(bar: QProgressBar, view: ProgressView) -> None:
    """Show `view` on `bar` without QProgressBar's synchronous repaint (20-25 ms of Krita's
    GUI thread per change): updates are off while the value changes, and turning them on
    again schedules an ordinary paint."""
    if bar.isHidden() == view.visible:
        bar.setVisible(view.visible)
    if not view.visible:
        return
    maximum, value = (0, 0) if view.percent is None else (100, view.percent)
    if (bar.maximum(), bar.value()) == (maximum, value):
        return
    bar.setUpdatesEnabled(False)
    try:
        bar.setRange(0, maximum)
        bar.setValue(value)
    finally:
        bar.setUpdatesEnabled(True)


class JobRow(QWidget):
    def __init__(self, entry: QueuedJob, queue: JobQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.job_id = entry.job_id
        self.setObjectName(f"job_row_{entry.number}")
        self.label = QLabel()
        self.label.setObjectName("job_label")
        self.label.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setObjectName("job_progress")
        self.bar.setMaximumHeight(8)
        self.bar.setTextVisible(False)
        self.bar.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("job_cancel")
        self.cancel_button.setToolTip(f"Cancel job #{entry.number} only")
        self.cancel_button.clicked.connect(lambda: queue.cancel(self.job_id))
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.label, 1)
        top.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(1)
        layout.addLayout(top)
        layout.addWidget(self.bar)
        self.render(entry)

    def render(self, entry: QueuedJob) -> None:
        self.label.setText(job_line(entry))
        self.cancel_button.setVisible(entry.is_active)
        set_progress(self.bar, job_progress(entry))


class QueueView(QWidget):
    """The rows of a JobQueue, newest at the bottom."""

    def __init__(self, queue: JobQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("queue_view")
        self.queue = queue
        self.rows: dict[str, JobRow] = {}
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        queue.changed.connect(self._on_changed)
        self.setVisible(False)

    def _on_changed(self, job_id: str) -> None:
        entry = self.queue.entries.get(job_id)
        if entry is None:
            return
        row = self.rows.get(job_id)
        if row is None:
            row = JobRow(entry, self.queue, self)
            self.rows[job_id] = row
            self._layout.addWidget(row)
        else:
            row.render(entry)
        self._drop_old_ended()
        self.setVisible(bool(self.rows))

    def _drop_old_ended(self) -> None:
        ended = [
            job_id
            for job_id in self.rows
            if job_id in self.queue.entries and not self.queue.entries[job_id].is_active
        ]
        for job_id in ended[:-KEEP_ENDED] if len(ended) > KEEP_ENDED else []:
            row = self.rows.pop(job_id)
            self._layout.removeWidget(row)
            row.deleteLater()
