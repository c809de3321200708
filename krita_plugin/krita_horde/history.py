"""The results of past jobs, kept in the docker as a model the history view observes: each
image with its prompt, seed and settings, and what the artist can do with it — apply it as a
layer at its job's selection, discard it, re-run its settings, copy its seed, open its
settings in the form. No widgets here."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PyQt5.QtCore import QObject, Qt, pyqtSignal
from PyQt5.QtGui import QImage

from .document import is_open
from .inserter import InsertedResult, ResultInserter
from .job import GeneratedImage
from .preparation import PreparedJob

# Images kept (the oldest go first): each is a full-size QImage in memory.
MAX_ITEMS = 40
THUMBNAIL_SIDE = 96


@dataclass
class HistoryItem:
    item_id: str
    job_number: int
    image: GeneratedImage
    prepared: PreparedJob  # the job's area, mode, selection shape, settings, pixel format
    doc: Any  # the document it was made for
    thumbnail: QImage
    applied: bool = False  # a layer was made from it (apply, or "add every result")

    @property
    def seed(self) -> str:
        return self.image.seed

    @property
    def prompt(self) -> str:
        return self.prepared.settings.prompt

    def summary(self) -> str:
        """The tooltip: what made this image."""
        settings, area = self.prepared.settings, self.prepared.area
        bounds, generation = area.bounds, area.generation
        lines = [
            f"#{self.job_number} {self.prepared.mode}: {settings.prompt}",
            f"seed {self.seed or '?'} · {settings.steps} steps · cfg {settings.cfg:g}"
            f" · {settings.sampler}",
            f"model {self.image.model or settings.model or 'any'}"
            f" · {generation.width}×{generation.height} for {bounds.width}×{bounds.height}"
            f" at {bounds.x},{bounds.y}",
        ]
        if settings.negative.strip():
            lines.insert(1, f"negative: {settings.negative}")
        if self.prepared.mode != "txt2img":
            lines.append(f"denoising {settings.denoise:g}")
        return "\n".join(lines)


def thumbnail(image: QImage) -> QImage:
    return image.scaled(THUMBNAIL_SIDE, THUMBNAIL_SIDE, Qt.KeepAspectRatio, Qt.SmoothTransformation)


class History(QObject):
    """Newest last. `changed` fires on every addition, removal and apply."""

    changed = pyqtSignal()
    applied = pyqtSignal(str, list)  # item id, layer names
    apply_failed = pyqtSignal(str, str)  # item id, message

    def __init__(self, app: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.items: dict[str, HistoryItem] = {}
        self._ids = itertools.count(1)
        self._inserters: dict[str, ResultInserter] = {}

    def add(
        self,
        job_number: int,
        images: list[GeneratedImage],
        prepared: PreparedJob,
        doc: Any,
        applied: bool,
    ) -> list[str]:
        """Keep a job's images; returns their item ids."""
        ids = []
        for image in images:
            item_id = f"h{next(self._ids)}"
            self.items[item_id] = HistoryItem(
                item_id, job_number, image, prepared, doc, thumbnail(image.image), applied
            )
            ids.append(item_id)
        while len(self.items) > MAX_ITEMS:
            del self.items[next(iter(self.items))]
        self.changed.emit()
        return ids

    def discard(self, item_id: str) -> None:
        if self.items.pop(item_id, None) is not None:
            self.changed.emit()

    def apply(self, item_id: str, done: Callable[[InsertedResult], None] | None = None) -> None:
        """Add the image as a layer at its job's selection (with the selection's shape as a
        mask), in the document it was made for; `applied` or `apply_failed` follow."""
        item = self.items.get(item_id)
        if item is None or item_id in self._inserters:
            return
        if not is_open(self.app, item.doc):
            self.apply_failed.emit(item_id, "the document of this result is no longer open")
            return

        def inserted(result: InsertedResult) -> None:
            self._inserters.pop(item_id, None)
            item.applied = True
            self.changed.emit()
            self.applied.emit(item_id, list(result.layer_names))
            if done is not None:
                done(result)

        def failed(message: str) -> None:
            self._inserters.pop(item_id, None)
            self.apply_failed.emit(item_id, message)

        inserter = ResultInserter(
            self.app, item.doc, item.prepared, [item.image], inserted, failed, item.job_number
        )
        self._inserters[item_id] = inserter
        inserter.run()
