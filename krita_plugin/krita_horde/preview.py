"""The live preview of a running job: a temporary paint layer at the job's area showing the
latest preview the worker sent (our horde's progress extension), removed when the results
are in or the job ends otherwise.

Like the result inserter: the image is fitted to the area in a background thread, and each
Krita call (adding the layer, writing its pixels and refreshing) gets its own event-loop turn.
Krita activates a node a script adds, so the artist's active layer is given back at once.
"""

from __future__ import annotations

import logging
from typing import Any

from PyQt5.QtCore import QTimer
from PyQt5.QtGui import QImage

from .background import BackgroundTask, run_in_background
from .colorspace import PixelFormat
from .document import is_open
from .geometry import JobArea
from .inserter import STEP_DELAY_MS, fit_to_area
from .layer_space import make_srgb

log = logging.getLogger(__name__)

PREVIEW_PREFIX = "Horde preview"


def preview_layer_name(number: int) -> str:
    return f"{PREVIEW_PREFIX} #{number}"


class PreviewLayer:
    """One job's preview layer in its document (made on the first preview)."""

    def __init__(self, app: Any, doc: Any, area: JobArea, fmt: PixelFormat, number: int) -> None:
        self.app, self.doc, self.area, self.fmt = app, doc, area, fmt
        self.name = preview_layer_name(number)
        self.layer: Any = None
        self.shown = 0  # previews written so far
        self._task: BackgroundTask[bytes] | None = None
        self._pending: QImage | None = None
        self._closed = False
        self._artist_layer: Any = None

    def show(self, image: QImage) -> None:
        """Show `image` (the newest preview); previews arriving while one is being fitted
        replace each other, only the newest is written."""
        if self._closed:
            return
        if self._task is not None:
            self._pending = image
            return
        area, fmt = self.area, self.fmt
        self._task = run_in_background(
            lambda: fit_to_area(image, area, fmt=fmt), self._fitted, self._fit_failed
        )

    def remove(self) -> None:
        """Take the preview out of the document (the results replace it, or the job ended)."""
        self._closed = True
        self._pending = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
        layer, self.layer = self.layer, None
        if layer is None or not is_open(self.app, self.doc):
            return
        try:
            if layer.parentNode() is not None:
                layer.remove()
                self.doc.refreshProjection()
        except Exception:
            log.exception("could not remove the preview layer %s", self.name)

    def _fit_failed(self, error: Exception) -> None:
        self._task = None
        log.info("preview not shown: %s", error)

    def _fitted(self, pixels: bytes) -> None:
        self._task = None
        if self._closed or not is_open(self.app, self.doc):
            return
        if self.layer is None:
            self._add_layer()
            # Its own event-loop turn, after Krita's own (queued) activation of the new layer.
            QTimer.singleShot(STEP_DELAY_MS, lambda: self._write(pixels))
        else:
            self._write(pixels)

    def _add_layer(self) -> None:
        self._artist_layer = self.doc.activeNode()
        root = self.doc.rootNode()
        children = root.childNodes()
        self.layer = self.doc.createNode(self.name, "paintlayer")
        if self.fmt.krita_converts:
            # It takes the 8-bit sRGB preview as it is; Krita composes it with the document's
            # colour space, and the layer is removed again, so it is never converted back.
            make_srgb(self.layer)
        root.addChildNode(self.layer, children[-1] if children else None)
        self._give_back_active_layer()

    def _give_back_active_layer(self) -> None:
        """Krita activates the added preview layer (at once, or a turn later): the artist's
        layer is made active again, unless the artist chose another one meanwhile."""
        artist_layer, active = self._artist_layer, self.doc.activeNode()
        if artist_layer is None or artist_layer.parentNode() is None:
            return
        if active is None or active.name() == self.name:
            self.doc.setActiveNode(artist_layer)

    def _write(self, pixels: bytes) -> None:
        if self._closed or self.layer is None or not is_open(self.app, self.doc):
            return
        bounds = self.area.bounds
        try:
            self._give_back_active_layer()
            self.layer.setPixelData(pixels, bounds.x, bounds.y, bounds.width, bounds.height)
            self.doc.refreshProjection()
            self.shown += 1
        except Exception:
            log.exception("could not write the preview layer %s", self.name)
        if self._pending is not None:
            image, self._pending = self._pending, None
            self.show(image)
