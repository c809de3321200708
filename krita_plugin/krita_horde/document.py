"""Reading an open Krita document for a job: is it usable, its pixel format, the selection,
the visible pixels, the "Horde mask" layer, and whether it is still open.

The Krita document is passed in (a small fake in unit tests); nothing here imports `krita`.
Every call happens on the GUI thread and is fast: Krita's QByteArrays are handed on as they
are, and the copying and converting happens in build_job's background thread.
"""

from __future__ import annotations

from typing import Any

from .colorspace import ColorSpaceError, PixelFormat
from .geometry import Bounds, Extent, Outpaint
from .preparation import MASK_LAYER_NAME


class DocumentError(ValueError):
    """A document the plug-in cannot work on; the message says why and what to do."""


def check_document(doc: Any) -> PixelFormat:
    """The document's pixel format, or DocumentError for one the plug-in cannot convert (its
    bytes would be misread): RGB and grey in 8/16-bit integer and 16/32-bit float work, and
    CMYK, Lab, XYZ and YCbCr through Krita's own conversion."""
    if doc is None:
        raise DocumentError("no document is open: create or open an image first")
    profile = doc.colorProfile() if hasattr(doc, "colorProfile") else ""
    try:
        return PixelFormat.of(doc.colorModel(), doc.colorDepth(), profile or "")
    except ColorSpaceError as error:
        raise DocumentError(str(error)) from None


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
        self.format = check_document(doc)
        self.doc = doc
        self._selection = doc.selection()

    def pixel_format(self) -> PixelFormat:
        return self.format

    def extent(self) -> Extent:
        return Extent(self.doc.width(), self.doc.height())

    def selection_bounds(self) -> Bounds | None:
        selection = self._selection
        if selection is None or selection.width() <= 0 or selection.height() <= 0:
            return None
        return Bounds(selection.x(), selection.y(), selection.width(), selection.height())

    # Krita's QByteArrays are handed on as they are: build_job copies them into bytes in its
    # background thread (tens of MB for a big selection: milliseconds on the GUI thread).

    def selection_mask(self, bounds: Bounds) -> Any:
        return self._selection.pixelData(bounds.x, bounds.y, bounds.width, bounds.height)

    def visible_pixels(self, bounds: Bounds) -> Any:
        # The document's projection: every visible layer merged, as the artist sees it.
        if self.format.krita_converts:
            # An 8-bit sRGB QImage converted by Krita's colour management; the document
            # itself is not touched (outside the canvas: transparent).
            return self.doc.projection(bounds.x, bounds.y, bounds.width, bounds.height)
        return self.doc.pixelData(bounds.x, bounds.y, bounds.width, bounds.height)

    def mask_layer_pixels(self, bounds: Bounds) -> Any:
        layer = find_mask_layer(self.doc.rootNode())
        if layer is None:
            return None
        return layer.pixelData(bounds.x, bounds.y, bounds.width, bounds.height)


def walk(node: Any) -> list[Any]:
    """Every node under `node`, depth first."""
    found = []
    for child in node.childNodes():
        found.append(child)
        found.extend(walk(child))
    return found


def is_open(app: Any, doc: Any) -> bool:
    """True while the document is still open in Krita (closed documents leave stale
    wrappers whose methods return nothing)."""
    try:
        return any(open_doc == doc for open_doc in app.documents()) and doc.rootNode() is not None
    except RuntimeError:  # the wrapped C++ object is gone
        return False


class OutpaintCanvas:
    """A CanvasSource for outpainting: the document's pixels, with a "selection" that covers
    the generated area and selects only the new canvas (so the horde inpaints it and the
    results are masked to it). The document's own selection and mask layer are ignored."""

    def __init__(self, canvas: DocumentCanvas, plan: Outpaint) -> None:
        self.canvas = canvas
        self.plan = plan

    def extent(self) -> Extent:
        return self.canvas.extent()

    def selection_bounds(self) -> Bounds | None:
        return self.plan.bounds

    def selection_mask(self, bounds: Bounds) -> bytes:
        return self.plan.mask(bounds)

    def visible_pixels(self, bounds: Bounds) -> Any:
        return self.canvas.visible_pixels(bounds)

    def mask_layer_pixels(self, bounds: Bounds) -> None:
        return None

    def pixel_format(self) -> PixelFormat:
        return self.canvas.pixel_format()
