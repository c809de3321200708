"""The live preview of a running job: a temporary paint layer at the job's area showing the
latest preview the worker sent (our horde's progress extension), removed when the results
are in or the job ends otherwise.

Like the result inserter: the image is fitted to the area (scaled, cropped, converted) in a
background thread, and each Krita call (adding the layer, writing its pixels, refreshing the
projection) gets its own event-loop turn. Krita activates a node a script adds, so the artist's
active layer is given back at once.

Each shown preview costs Krita's GUI thread a whole-image refresh and canvas repaint (Krita
5.1's scripting API has no refresh of a rectangle: `Document.refreshProjection` is the only
way to make written pixels visible). So previews are coalesced and throttled: while one is
being fitted or written, or less than PREVIEW_INTERVAL_MS after the last one was shown, a new
preview only replaces the pending one; the newest is drawn once the interval has passed.
"""

from __future__ import annotations

import logging
import time
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
PREVIEW_INTERVAL_MS = 1000  # at most one preview drawn per interval


def preview_layer_name(number: int) -> str:
    return f"{PREVIEW_PREFIX} #{number}"


class PreviewLayer:
    """One job's preview layer in its document (made on the first preview)."""

    def __init__(self, app: Any, doc: Any, area: JobArea, fmt: PixelFormat, number: int) -> None:
        self.app, self.doc, self.area, self.fmt = app, doc, area, fmt
        self.name = preview_layer_name(number)
        self.layer: Any = None
        self.shown = 0  # previews written so far
        self.interval_ms = PREVIEW_INTERVAL_MS
        self._task: BackgroundTask[bytes] | None = None
        self._pending: QImage | None = None  # the newest preview not drawn yet
        self._busy = False  # a preview is being fitted, written or refreshed
        self._timer_armed = False
        self._next_at = 0.0  # monotonic time (s) before which no preview is drawn
        self._closed = False
        self._artist_layer: Any = None

    def show(self, image: QImage) -> None:
        """Show `image` (the newest preview) as soon as the previous one is drawn and the
        interval has passed; previews arriving meanwhile replace it, only the newest is drawn."""
        if self._closed:
            return
        self._pending = image
        self._pump()

    def _pump(self) -> None:
        if self._closed or self._busy or self._pending is None or self._timer_armed:
            return
        wait_ms = int((self._next_at - time.monotonic()) * 1000)
        if wait_ms > 0:
            self._timer_armed = True
            QTimer.singleShot(wait_ms, self._timer_fired)
            return
        image, self._pending = self._pending, None
        self._busy = True
        area, fmt = self.area, self.fmt
        self._task = run_in_background(
            lambda: fit_to_area(image, area, fmt=fmt), self._fitted, self._fit_failed
        )

    def _timer_fired(self) -> None:
        self._timer_armed = False
        self._pump()

    def _drawn(self) -> None:
        """One preview is through (shown or not): the next may start after the interval."""
        self._busy = False
        self._next_at = time.monotonic() + self.interval_ms / 1000
        self._pump()

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
        self._drawn()

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
        except Exception:
            log.exception("could not write the preview layer %s", self.name)
            self._drawn()
            return
        # The refresh (and the repaint it causes) in a turn of its own.
        QTimer.singleShot(0, self._refresh)

    def _refresh(self) -> None:
        if self._closed or self.layer is None or not is_open(self.app, self.doc):
            return
        try:
            self.doc.refreshProjection()
            self.shown += 1
        except Exception:
            log.exception("could not refresh the preview layer %s", self.name)
        self._drawn()
