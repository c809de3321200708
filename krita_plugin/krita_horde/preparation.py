"""Turn what the canvas offers into a ready-to-send job: area, mode, payload (no Krita here;
document.py supplies the pixels through the CanvasSource protocol).

Two steps, so Krita stays responsive: `read_canvas` reads the pixels from the document (Krita's
API: GUI thread only, fast), `build_job` does the heavy part — scaling, masks, WebP/PNG, base64 —
on plain bytes and QImages only, so it may run in a background thread (see background.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from PyQt5.QtCore import QByteArray
from PyQt5.QtGui import QImage

from .colorspace import NATIVE, PixelFormat, to_bgra8
from .geometry import Bounds, Extent, JobArea, job_area
from .images import (
    bgra_to_qimage,
    crop_bytes,
    encode_base64,
    flatten_on_white,
    has_visible_pixels,
    is_fully_selected,
    layer_to_mask,
    mask_to_qimage,
    qimage_to_bgra,
    scaled,
)
from .lightness import mask_layer_to_bgra8
from .payload import INPAINTING, TXT2IMG, JobSources, build_payload, resolve_mode
from .settings import JobSettings

# A paint layer with this name (any case) is read as an inpainting mask: paint white where
# the horde should repaint. It may be hidden.
MASK_LAYER_NAME = "horde mask"
GROUP_NAME_CHARS = 40
LAYER_NAME_CHARS = 40


class CanvasSource(Protocol):
    """What a job reads from a document. Pixel methods take canvas bounds inside the canvas and
    return bytes, or the QByteArray Krita's pixelData gives (turned into bytes by build_job,
    off the GUI thread: copying a big area costs milliseconds)."""

    def extent(self) -> Extent: ...

    def selection_bounds(self) -> Bounds | None: ...

    def selection_mask(self, bounds: Bounds) -> bytes | QByteArray: ...

    def visible_pixels(self, bounds: Bounds) -> bytes | QByteArray | QImage: ...

    def mask_layer_pixels(self, bounds: Bounds) -> bytes | QByteArray | None: ...

    def pixel_format(self) -> PixelFormat: ...


@dataclass(frozen=True)
class PreparedJob:
    settings: JobSettings
    area: JobArea
    mode: str
    payload: dict[str, Any]
    # The selection's shape over the area when it is not a plain rectangle: the results get a
    # transparency mask from it. None: the results cover the whole area.
    selection_mask: bytes | None
    pixel_format: PixelFormat = NATIVE  # the document's: results are converted back to it


@dataclass(frozen=True)
class CanvasRead:
    """The raw pixels a job needs, read from the document on the GUI thread. All of them
    cover the area's context (the selection and the pixels around it)."""

    settings: JobSettings
    area: JobArea
    # The visible pixels of the context in the document's format, or as an 8-bit sRGB QImage
    # Krita converted (CMYK, Lab, XYZ, YCbCr documents).
    pixels: bytes | QByteArray | QImage
    selection: bytes | QByteArray | None  # the selection over the context (None: not used)
    mask_layer: bytes | QByteArray | None  # the "Horde mask" layer over the context, if any
    pixel_format: PixelFormat = NATIVE  # of `pixels` and `mask_layer` (the document's)


def read_canvas(
    canvas: CanvasSource, settings: JobSettings, max_pixels: int | None = None
) -> CanvasRead:
    """Check the settings, find the area and copy its bytes (SettingsError/GeometryError when
    the settings or the selection cannot make a job). Only this step touches the canvas.
    `max_pixels`: the largest worker's limit for the chosen model, when known."""
    settings.validate()
    area = job_area(canvas.extent(), canvas.selection_bounds(), settings.limits, max_pixels)
    context = area.context
    selection = canvas.selection_mask(context) if area.from_selection else None
    return CanvasRead(
        settings,
        area,
        canvas.visible_pixels(context),
        selection,
        canvas.mask_layer_pixels(context),
        canvas.pixel_format(),
    )


def build_job(read: CanvasRead) -> PreparedJob:
    """The job from the bytes read: mode, scaled and encoded sources, payload. Pure bytes and
    QImage work (no Krita, no QPixmap), so it is safe in a background thread."""
    settings, area = read.settings, read.area
    bounds, context = area.bounds, area.context
    selection = _as_bytes(read.selection)
    selection_mask = None  # the selection's shape over the area (bounds), when not a rectangle
    if selection is not None:
        shape = crop_bytes(selection, context, bounds, 1)
        if not is_fully_selected(shape):
            selection_mask = shape
    fmt = read.pixel_format
    # Other colour spaces become 8-bit sRGB here, off the GUI thread (float ones take a while).
    mask_layer = _as_bytes(read.mask_layer)
    if mask_layer is not None:
        convert = mask_layer_to_bgra8 if fmt.krita_converts else to_bgra8
        mask_layer = convert(mask_layer, fmt)
    mask_image = _inpainting_mask(
        mask_layer, context, selection if selection_mask is not None else None
    )
    if isinstance(read.pixels, QImage):
        pixels = qimage_to_bgra(read.pixels)
    else:
        pixels = to_bgra8(bytes(read.pixels), fmt)
    # The mode follows what is in the selection itself, not in the context around it.
    has_content = has_visible_pixels(crop_bytes(pixels, context, bounds, 4))
    mode = resolve_mode(settings.mode, has_content=has_content, has_mask=mask_image is not None)
    sources = JobSources()
    if mode != TXT2IMG:
        source = flatten_on_white(bgra_to_qimage(pixels, context.extent))
        image_b64 = encode_base64(scaled(source, area.generation))
        mask_b64 = None
        if mode == INPAINTING:
            if mask_image is None:  # inpainting asked for a plain rectangle: repaint it all
                mask_image = _rectangle_mask(context, bounds)
            # PNG: exact like lossless WebP, and about 4x faster to encode for a mask.
            mask_b64 = encode_base64(scaled(mask_image, area.generation), fmt="png")
        sources = JobSources(image_b64, mask_b64)
    payload = build_payload(settings, area.generation, mode, sources)
    return PreparedJob(settings, area, mode, payload, selection_mask, fmt)


def prepare_job(canvas: CanvasSource, settings: JobSettings) -> PreparedJob:
    """Both steps at once, on the calling thread (scripts and tests; the docker splits them)."""
    return build_job(read_canvas(canvas, settings))


def _as_bytes(data: bytes | QByteArray | None) -> bytes | None:
    return None if data is None else bytes(data)


def _inpainting_mask(
    layer: bytes | None, context: Bounds, selection: bytes | None
) -> QImage | None:
    if layer is not None and has_visible_pixels(layer):
        return layer_to_mask(bgra_to_qimage(layer, context.extent))
    if selection is not None:
        return mask_to_qimage(selection, context.extent)
    return None


def _rectangle_mask(context: Bounds, bounds: Bounds) -> QImage:
    """White (repaint) over the area, black (keep) over the context around it."""
    left, top = bounds.x - context.x, bounds.y - context.y
    right = context.width - left - bounds.width
    inside = bytes(left) + b"\xff" * bounds.width + bytes(right)
    rows = [bytes(context.width)] * top + [inside] * bounds.height
    rows += [bytes(context.width)] * (context.height - top - bounds.height)
    return mask_to_qimage(b"".join(rows), context.extent)


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def group_name(prompt: str, mode: str, number: int | None = None) -> str:
    """`Horde #3 img2img: a red fox`: the number is the job's in the docker's queue."""
    tag = f" #{number}" if number is not None else ""
    return f"Horde{tag} {mode}: {_shorten(prompt, GROUP_NAME_CHARS)}"


def unique_name(name: str, taken: set[str]) -> str:
    """`name`, or `name (2)`, `name (3)`… when a layer of the document already has it (jobs
    of an earlier session are numbered from 1 again)."""
    candidate, count = name, 1
    while candidate in taken:
        count += 1
        candidate = f"{name} ({count})"
    return candidate


def layer_name(prompt: str, seed: str) -> str:
    return f"{_shorten(prompt, LAYER_NAME_CHARS)} [seed {seed or '?'}]"
