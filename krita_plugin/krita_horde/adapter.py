"""The thin layer over Krita's scripting API: read a document for a job, put results back.

Everything here runs on the GUI thread. The Krita application object is passed in (the real
`Krita.instance()` inside Krita, a small fake in unit tests), so this module only imports
`krita` where Krita-only classes are needed, and never at import time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PyQt5.QtCore import QTimer

from .geometry import Bounds, Extent
from .images import apply_mask, qimage_to_bgra, scaled
from .job import GeneratedImage
from .preparation import MASK_LAYER_NAME, PreparedJob, group_name, layer_name

log = logging.getLogger(__name__)

SETTINGS_GROUP = "krita_horde"
SUPPORTED_COLOR = ("RGBA", "U8")
TRANSPARENCY_MASK_ACTION = "add_new_transparency_mask"
# Krita 5.1 needs event-loop turns between activating a node and acting on it.
STEP_DELAY_MS = 50


class DocumentError(ValueError):
    """A document the plug-in cannot work on; the message says why and what to do."""


class KritaSettingsStore:
    """Settings in Krita's kritarc (group `krita_horde`)."""

    def __init__(self, app: Any) -> None:
        self._app = app

    def read(self, key: str, default: str) -> str:
        value = self._app.readSetting(SETTINGS_GROUP, key, default)
        return value if isinstance(value, str) else default

    def write(self, key: str, value: str) -> None:
        self._app.writeSetting(SETTINGS_GROUP, key, value)


def check_document(doc: Any) -> None:
    """Refuse documents whose pixels are not 8-bit RGBA (the bytes would be misread)."""
    if doc is None:
        raise DocumentError("no document is open: create or open an image first")
    model, depth = doc.colorModel(), doc.colorDepth()
    if (model, depth) != SUPPORTED_COLOR:
        raise DocumentError(
            f"this document is {model}/{depth}; the horde plug-in works on 8-bit RGBA images."
            " Convert it with Image › Convert Image Color Space… (RGB/Alpha, 8-bit integer)"
        )


def find_mask_layer(node: Any) -> Any | None:
    """The first paint layer named like MASK_LAYER_NAME anywhere in the tree."""
    for child in node.childNodes():
        if child.type() == "paintlayer" and child.name().strip().lower() == MASK_LAYER_NAME:
            return child
        found = find_mask_layer(child)
        if found is not None:
            return found
    return None


class DocumentCanvas:
    """A CanvasSource reading an open Krita document."""

    def __init__(self, doc: Any) -> None:
        check_document(doc)
        self.doc = doc
        self._selection = doc.selection()

    def extent(self) -> Extent:
        return Extent(self.doc.width(), self.doc.height())

    def selection_bounds(self) -> Bounds | None:
        selection = self._selection
        if selection is None or selection.width() <= 0 or selection.height() <= 0:
            return None
        return Bounds(selection.x(), selection.y(), selection.width(), selection.height())

    def selection_mask(self, bounds: Bounds) -> bytes:
        return bytes(self._selection.pixelData(bounds.x, bounds.y, bounds.width, bounds.height))

    def visible_pixels(self, bounds: Bounds) -> bytes:
        # The document's projection: every visible layer merged, as the artist sees it.
        return bytes(self.doc.pixelData(bounds.x, bounds.y, bounds.width, bounds.height))

    def mask_layer_pixels(self, bounds: Bounds) -> bytes | None:
        layer = find_mask_layer(self.doc.rootNode())
        if layer is None:
            return None
        return bytes(layer.pixelData(bounds.x, bounds.y, bounds.width, bounds.height))


def is_open(app: Any, doc: Any) -> bool:
    """True while the document is still open in Krita (closed documents leave stale
    wrappers whose methods return nothing)."""
    try:
        return any(open_doc == doc for open_doc in app.documents()) and doc.rootNode() is not None
    except RuntimeError:  # the wrapped C++ object is gone
        return False


@dataclass
class InsertedResult:
    group_name: str
    layer_names: list[str]
    masked_by: str  # "transparency mask", "baked alpha" or "none"


def _result_pixels(
    image: GeneratedImage, bounds: Bounds, selection_mask: bytes | None, bake: bool
) -> bytes:
    fitted = scaled(image.image, bounds.extent)
    if bake and selection_mask is not None:
        fitted = apply_mask(fitted, selection_mask)
    return qimage_to_bgra(fitted)


class ResultInserter:
    """Puts one job's images into its document as a group of paint layers at the job area,
    with a transparency mask from the selection's shape; calls `done(InsertedResult)` (maybe
    some event-loop turns later, on Krita 5.1) or `failed(message)`."""

    def __init__(
        self,
        app: Any,
        doc: Any,
        prepared: PreparedJob,
        images: list[GeneratedImage],
        done: Callable[[InsertedResult], None],
        failed: Callable[[str], None],
    ) -> None:
        self.app = app
        self.doc = doc
        self.prepared = prepared
        self.images = images
        self._done = done
        self._failed = failed
        self.group: Any = None
        self.layers: list[Any] = []
        self._previous_active: Any = None
        self.result: InsertedResult | None = None

    def run(self) -> None:
        try:
            self._insert()
        except Exception as error:
            log.exception("inserting results failed")
            self._failed(f"could not add the result layers: {error}")

    def _insert(self) -> None:
        if not is_open(self.app, self.doc):
            self._failed("the document was closed while the job ran: its results were dropped")
            return
        doc, prepared = self.doc, self.prepared
        mask = prepared.selection_mask
        # Masks need Krita 5.2's API, or on 5.1 an action that only works on the active
        # document: otherwise the selection's shape is baked into the layers' alpha.
        native_mask = hasattr(doc, "createTransparencyMask")
        action_mask = not native_mask and self._is_active_document()
        bake = mask is not None and not (native_mask or action_mask)
        root = doc.rootNode()
        prompt = prepared.settings.prompt
        group = doc.createGroupLayer(group_name(prompt, prepared.mode))
        children = root.childNodes()
        root.addChildNode(group, children[-1] if children else None)
        self.group = group
        bounds = prepared.area.bounds
        names = []
        above = None
        for image in self.images:
            name = layer_name(prompt, image.seed)
            layer = doc.createNode(name, "paintlayer")
            group.addChildNode(layer, above)
            layer.setPixelData(
                _result_pixels(image, bounds, mask, bake),
                bounds.x,
                bounds.y,
                bounds.width,
                bounds.height,
            )
            self.layers.append(layer)
            names.append(name)
            above = layer
        self.result = InsertedResult(group.name(), names, "baked alpha" if bake else "none")
        self._refresh()
        if mask is None or bake:
            self._done(self.result)
        elif native_mask:
            self._add_native_mask(mask)
        else:
            # The workaround needs the group active; the artist's layer is re-activated after.
            self._previous_active = doc.activeNode()
            doc.setActiveNode(group)
            QTimer.singleShot(STEP_DELAY_MS, self._step_trigger_mask_action)

    def _is_active_document(self) -> bool:
        active = self.app.activeDocument()
        return active is not None and active == self.doc

    def _refresh(self) -> None:
        self.doc.waitForDone()
        self.doc.refreshProjection()

    def _add_native_mask(self, mask: bytes) -> None:
        from krita import Selection  # Krita 5.2+ only reaches here

        bounds = self.prepared.area.bounds
        node = self.doc.createTransparencyMask("Selection shape")
        selection = Selection()
        selection.setPixelData(mask, bounds.x, bounds.y, bounds.width, bounds.height)
        node.setSelection(selection)
        self.group.addChildNode(node, None)
        self._finish_with_mask()

    def _step_trigger_mask_action(self) -> None:
        try:
            if not is_open(self.app, self.doc) or not self._is_active_document():
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
            QTimer.singleShot(STEP_DELAY_MS, self._step_fill_mask)
        except Exception as error:
            log.exception("adding the transparency mask failed")
            self._failed(f"could not add the transparency mask: {error}")

    def _step_fill_mask(self) -> None:
        try:
            if not is_open(self.app, self.doc):
                self._failed("the document was closed while its results were being added")
                return
            node = self.doc.activeNode()
            if node is None or node.type() != "transparencymask":
                self._bake_instead()
                return
            bounds = self.prepared.area.bounds
            node.setName("Selection shape")
            node.setPixelData(
                self.prepared.selection_mask, bounds.x, bounds.y, bounds.width, bounds.height
            )
            self._restore_active_node()
            self._finish_with_mask()
        except Exception as error:
            log.exception("filling the transparency mask failed")
            self._failed(f"could not fill the transparency mask: {error}")

    def _restore_active_node(self) -> None:
        previous = self._previous_active
        # A layer deleted meanwhile has no parent any more: leave the mask active then.
        if previous is not None and previous.parentNode() is not None:
            self.doc.setActiveNode(previous)

    def _finish_with_mask(self) -> None:
        self._refresh()
        assert self.result is not None
        self.result.masked_by = "transparency mask"
        self._done(self.result)

    def _bake_instead(self) -> None:
        """Fallback when no mask could be made: cut the layers to the selection's shape."""
        if not is_open(self.app, self.doc):
            self._failed("the document was closed while its results were being added")
            return
        bounds = self.prepared.area.bounds
        for layer, image in zip(self.layers, self.images, strict=True):
            layer.setPixelData(
                _result_pixels(image, bounds, self.prepared.selection_mask, True),
                bounds.x,
                bounds.y,
                bounds.width,
                bounds.height,
            )
        self._refresh()
        assert self.result is not None
        self.result.masked_by = "baked alpha"
        self._done(self.result)
