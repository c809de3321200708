"""Putting one job's results into its document as layers: `ResultInserter` and its step queue.

Everything here that touches Krita runs on the GUI thread, one expensive call per event-loop
turn; only the pure image work of turning results into layer pixels (`_result_pixels`) goes
to a background thread. Only `_add_native_mask` imports `krita` (Krita 5.2's Selection).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PyQt5.QtCore import QTimer
from PyQt5.QtGui import QImage

from .background import BackgroundTask, run_in_background
from .colorspace import PixelFormat, from_bgra8
from .document import is_open, walk
from .geometry import JobArea
from .images import apply_mask, qimage_to_bgra, scaled
from .job import GeneratedImage
from .layer_space import into_document_space, make_srgb
from .preparation import PreparedJob, group_name, layer_name, unique_name

log = logging.getLogger(__name__)

TRANSPARENCY_MASK_ACTION = "add_new_transparency_mask"
# Krita 5.1 needs event-loop turns between activating a node and acting on it.
STEP_DELAY_MS = 50


@dataclass
class InsertedResult:
    group_name: str
    layer_names: list[str]
    masked_by: str  # "transparency mask", "baked alpha" or "none"


def fit_to_area(
    image: QImage,
    area: JobArea,
    selection_mask: bytes | None = None,
    bake: bool = False,
    fmt: PixelFormat | None = None,
) -> bytes:
    """Layer pixels of a generated image: scaled uniformly back to the context it was
    generated from, cut to the area, optionally cut to the selection's shape, and converted
    into the document's pixel format (8-bit RGBA: as it is). Pure QImage/bytes work."""
    bounds, context = area.bounds, area.context
    fitted = scaled(image, context.extent)
    if context != bounds:
        fitted = fitted.copy(
            bounds.x - context.x, bounds.y - context.y, bounds.width, bounds.height
        )
    if bake and selection_mask is not None:
        fitted = apply_mask(fitted, selection_mask)
    return from_bgra8(qimage_to_bgra(fitted), fmt or PixelFormat())


def _result_pixels(
    image: GeneratedImage,
    area: JobArea,
    selection_mask: bytes | None,
    bake: bool,
    fmt: PixelFormat | None = None,
) -> bytes:
    return fit_to_area(image.image, area, selection_mask, bake, fmt)


CLOSED_BEFORE = "the document was closed while the job ran: its results were dropped"
CLOSED_DURING = "the document was closed while its results were being added"
ADD_LAYERS_FAILED = "could not add the result layers"
MASK_FAILED = "could not add the transparency mask"
FILL_MASK_FAILED = "could not fill the transparency mask"
CONVERT_FAILED = "could not convert the result layer into the document's colour space"


@dataclass
class _Step:
    """One piece of GUI-thread work of a ResultInserter, run in an event-loop turn of its own
    `delay_ms` after the previous one; `what` starts the job's error message if it fails."""

    run: Callable[[], None]
    what: str
    delay_ms: int = 0


class ResultInserter:
    """Puts one job's images into its document as a group of paint layers at the job area,
    with a transparency mask from the selection's shape; calls `done(InsertedResult)` or
    `failed(message)` some event-loop turns later.

    Each image is scaled to the area (and, when needed, cut to the selection) in a background
    thread, one image at a time so that only one area-sized buffer is alive. The GUI thread
    only makes Krita's calls, and each expensive one (adding the group, adding a layer,
    writing its pixels, the mask, refreshing the projection) runs in its own event-loop turn
    from a small step queue: inside Krita each takes 10-50 ms, so together in one turn they
    froze the interface for longer than an artist notices. Before every step the document is
    checked (closed: the results are dropped); a step that fails removes the group again."""

    def __init__(
        self,
        app: Any,
        doc: Any,
        prepared: PreparedJob,
        images: list[GeneratedImage],
        done: Callable[[InsertedResult], None],
        failed: Callable[[str], None],
        number: int | None = None,
    ) -> None:
        self.app = app
        self.number = number
        self.doc = doc
        self.prepared = prepared
        self.images = images
        self._done = done
        self._failed = failed
        self.group: Any = None
        self.layers: list[Any] = []
        self.layer_names: list[str] = []
        self._previous_active: Any = None
        self._native_mask = False
        self._bake = False
        self._task: BackgroundTask[bytes] | None = None
        self._steps: deque[_Step] = deque()
        self._step_scheduled = False
        self._ended = False
        self.result: InsertedResult | None = None

    def run(self) -> None:
        self._then(_Step(self._start, ADD_LAYERS_FAILED))

    # --- the step queue ------------------------------------------------------------------

    def _then(self, *steps: _Step) -> None:
        """Queue steps; each runs in its own event-loop turn, in order."""
        self._steps.extend(steps)
        self._schedule_next()

    def _schedule_next(self) -> None:
        if self._step_scheduled or self._ended or not self._steps:
            return
        self._step_scheduled = True
        QTimer.singleShot(self._steps[0].delay_ms, self._run_next)

    def _run_next(self) -> None:
        self._step_scheduled = False
        if self._ended or not self._steps:
            return
        step = self._steps.popleft()
        if not is_open(self.app, self.doc):
            self._end_failed(CLOSED_DURING if self.layers else CLOSED_BEFORE)
            return
        try:
            step.run()
        except Exception as error:
            log.exception("%s", step.what)
            self._end_failed(f"{step.what}: {error}")
            return
        self._schedule_next()

    def _end_done(self) -> None:
        assert self.result is not None
        self._ended = True
        self._done(self.result)

    def _end_failed(self, message: str) -> None:
        """Fail the job, taking a half-built group out of the document first (a closed
        document has nothing left to clean)."""
        self._ended = True
        self._steps.clear()
        if self._task is not None:
            self._task.cancel()
        if self.group is not None and is_open(self.app, self.doc):
            self._discard_group()
        self._failed(message)

    def _discard_group(self) -> None:
        try:
            if self.group.parentNode() is not None:
                self.group.remove()
            self._restore_active_node()
        except Exception:
            # The job fails anyway with the first error; an artist can delete the group.
            log.exception("could not remove the unfinished result group")

    # --- the steps -----------------------------------------------------------------------

    def _start(self) -> None:
        # Krita makes every node added to the tree the active one: remember the artist's
        # layer now, before anything is added, and give it back at the end (and on failure).
        self._previous_active = self.doc.activeNode()
        # Masks need Krita 5.2's API, or on 5.1 an action that only works on the active
        # document: otherwise the selection's shape is baked into the layers' alpha.
        self._native_mask = hasattr(self.doc, "createTransparencyMask")
        action_mask = not self._native_mask and self._is_active_document()
        mask = self.prepared.selection_mask
        self._bake = mask is not None and not (self._native_mask or action_mask)
        self._fill_layers(self._bake, self._add_layer_steps, self._layers_added)

    def _fill_layers(
        self,
        bake: bool,
        write: Callable[[int, bytes], list[_Step]],
        finish: Callable[[], None],
        index: int = 0,
    ) -> None:
        """Make image `index`'s pixels in the background, then queue the steps `write` gives
        for them; go on with the next image after those; `finish` after the last one."""
        image, area, mask = self.images[index], self.prepared.area, None
        if bake:
            mask = self.prepared.selection_mask

        fmt = self.prepared.pixel_format

        def work() -> bytes:
            return _result_pixels(image, area, mask, bake, fmt)

        def next_image() -> None:
            if index + 1 < len(self.images):
                self._fill_layers(bake, write, finish, index + 1)
            else:
                finish()

        def ready(pixels: bytes) -> None:
            self._task = None
            self._then(*write(index, pixels), _Step(next_image, ADD_LAYERS_FAILED))

        self._task = run_in_background(work, ready, self._pixels_failed)

    def _pixels_failed(self, error: Exception) -> None:
        self._task = None
        log.error("turning a result into layer pixels failed", exc_info=error)
        self._end_failed(f"could not turn the result into layer pixels: {error}")

    def _add_group(self) -> None:
        prepared, root = self.prepared, self.doc.rootNode()
        name = group_name(prepared.settings.prompt, prepared.mode, self.number)
        taken = {node.name() for node in walk(root)}
        group = self.doc.createGroupLayer(unique_name(name, taken))
        children = root.childNodes()
        self.group = group
        root.addChildNode(group, children[-1] if children else None)

    def _add_layer_steps(self, index: int, pixels: bytes) -> list[_Step]:
        def add() -> None:
            name = layer_name(self.prepared.settings.prompt, self.images[index].seed)
            layer = self.doc.createNode(name, "paintlayer")
            if self.prepared.pixel_format.krita_converts:
                make_srgb(layer)  # before it is in the tree: it takes our 8-bit sRGB bytes
            self.group.addChildNode(layer, self.layers[-1] if self.layers else None)
            self.layers.append(layer)
            self.layer_names.append(name)

        steps = [_Step(add, ADD_LAYERS_FAILED), *self._write_steps(index, pixels, converted=False)]
        if self.group is None:
            steps.insert(0, _Step(self._add_group, ADD_LAYERS_FAILED))
        return steps

    def _write_steps(self, index: int, pixels: bytes, converted: bool) -> list[_Step]:
        """Writing image `index`'s pixels into its layer. In a document whose colour model
        Krita converts, the layer is 8-bit sRGB while it is written and is then converted into
        the document's colour space, each in its own turn (`converted`: it already was, so it
        is made 8-bit sRGB again first)."""
        fmt = self.prepared.pixel_format
        write = _Step(lambda: self._write_pixels(index, pixels), ADD_LAYERS_FAILED)
        if not fmt.krita_converts:
            return [write]
        steps = [write, _Step(lambda: into_document_space(self.layers[index], fmt), CONVERT_FAILED)]
        if converted:
            steps.insert(0, _Step(lambda: make_srgb(self.layers[index]), CONVERT_FAILED))
        return steps

    def _write_pixels(self, index: int, pixels: bytes) -> None:
        bounds = self.prepared.area.bounds
        self.layers[index].setPixelData(pixels, bounds.x, bounds.y, bounds.width, bounds.height)

    def _layers_added(self) -> None:
        mask = self.prepared.selection_mask
        self.result = InsertedResult(
            self.group.name(), list(self.layer_names), "baked alpha" if self._bake else "none"
        )
        if mask is None or self._bake:
            self._then(*self._finishing_steps(self.result.masked_by))
        elif self._native_mask:
            self._then(
                _Step(lambda: self._add_native_mask(mask), MASK_FAILED),
                *self._finishing_steps("transparency mask"),
            )
        else:
            # The workaround needs the group active; the artist's layer is re-activated after.
            self._then(_Step(self._activate_group, MASK_FAILED))
            self._then(_Step(self._trigger_mask_action, MASK_FAILED, STEP_DELAY_MS))

    def _finishing_steps(self, masked_by: str) -> list[_Step]:
        def mark() -> None:
            assert self.result is not None
            self.result.masked_by = masked_by
            self._end_done()

        return [
            # Krita activates an added node a moment later (a queued signal of its shape
            # controller): give the artist's layer back after that, not before.
            _Step(self._restore_active_node, ADD_LAYERS_FAILED, STEP_DELAY_MS),
            _Step(self._refresh, ADD_LAYERS_FAILED),
            _Step(mark, ADD_LAYERS_FAILED),
        ]

    def _is_active_document(self) -> bool:
        active = self.app.activeDocument()
        return active is not None and active == self.doc

    def _refresh(self) -> None:
        # setPixelData writes the layer's pixels without marking them dirty, so the canvas
        # shows nothing until the projection is recomputed: refreshProjection is needed.
        # doc.waitForDone() before it is not: refreshProjection (KisImage::refreshGraph ->
        # KisUpdateScheduler::fullRefresh) takes the scheduler's lock, which already waits
        # for the updates in flight, and addChildNode has put the nodes in the tree when it
        # returns. waitForDone would in addition ask the artist's open stroke to end and
        # block the GUI thread until every queued stroke (e.g. one being painted) is done.
        self.doc.refreshProjection()

    def _add_native_mask(self, mask: bytes) -> None:
        from krita import Selection  # Krita 5.2+ only reaches here

        bounds = self.prepared.area.bounds
        node = self.doc.createTransparencyMask("Selection shape")
        selection = Selection()
        selection.setPixelData(mask, bounds.x, bounds.y, bounds.width, bounds.height)
        node.setSelection(selection)
        self.group.addChildNode(node, None)

    def _activate_group(self) -> None:
        self.doc.setActiveNode(self.group)

    def _trigger_mask_action(self) -> None:
        if not self._is_active_document():
            self._bake_instead()
            return
        active = self.doc.activeNode()
        if active is None or active.name() != self.group.name():
            self.doc.setActiveNode(self.group)
        action = self.app.action(TRANSPARENCY_MASK_ACTION)
        if action is None:
            self._bake_instead()
            return
        action.trigger()
        self._then(_Step(self._fill_mask, FILL_MASK_FAILED, STEP_DELAY_MS))

    def _fill_mask(self) -> None:
        node = self.doc.activeNode()
        if node is None or node.type() != "transparencymask":
            self._bake_instead()
            return
        bounds = self.prepared.area.bounds
        node.setName("Selection shape")
        node.setPixelData(
            self.prepared.selection_mask, bounds.x, bounds.y, bounds.width, bounds.height
        )
        self._then(*self._finishing_steps("transparency mask"))

    def _restore_active_node(self) -> None:
        previous = self._previous_active
        # A layer deleted meanwhile has no parent any more: leave the mask active then.
        if previous is not None and previous.parentNode() is not None:
            self.doc.setActiveNode(previous)

    def _bake_instead(self) -> None:
        """Fallback when no mask could be made: cut the layers to the selection's shape."""
        self._fill_layers(True, self._rewrite_layer_steps, self._baked)

    def _rewrite_layer_steps(self, index: int, pixels: bytes) -> list[_Step]:
        return self._write_steps(index, pixels, converted=True)

    def _baked(self) -> None:
        self._then(*self._finishing_steps("baked alpha"))
