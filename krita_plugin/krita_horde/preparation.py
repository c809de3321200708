"""Turn what the canvas offers into a ready-to-send job: area, mode, payload (no Krita here;
the adapter supplies the pixels through the CanvasSource protocol)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from PyQt5.QtGui import QColor, QImage

from .geometry import Bounds, Extent, JobArea, job_area
from .images import (
    bgra_to_qimage,
    encode_base64,
    flatten_on_white,
    has_visible_pixels,
    is_fully_selected,
    layer_to_mask,
    mask_to_qimage,
    scaled,
)
from .payload import INPAINTING, TXT2IMG, JobSources, build_payload, resolve_mode
from .settings import JobSettings

# A paint layer with this name (any case) is read as an inpainting mask: paint white where
# the horde should repaint. It may be hidden.
MASK_LAYER_NAME = "horde mask"
GROUP_NAME_CHARS = 40
LAYER_NAME_CHARS = 40


class CanvasSource(Protocol):
    """What a job reads from a document. Pixel methods take canvas bounds inside the canvas."""

    def extent(self) -> Extent: ...

    def selection_bounds(self) -> Bounds | None: ...

    def selection_mask(self, bounds: Bounds) -> bytes: ...

    def visible_pixels(self, bounds: Bounds) -> bytes: ...

    def mask_layer_pixels(self, bounds: Bounds) -> bytes | None: ...


@dataclass(frozen=True)
class PreparedJob:
    settings: JobSettings
    area: JobArea
    mode: str
    payload: dict[str, Any]
    # The selection's shape over the area when it is not a plain rectangle: the results get a
    # transparency mask from it. None: the results cover the whole area.
    selection_mask: bytes | None


def prepare_job(canvas: CanvasSource, settings: JobSettings) -> PreparedJob:
    """Everything a job needs, read from the canvas once (SettingsError/GeometryError when
    the settings or the selection cannot make a job)."""
    settings.validate()
    area = job_area(canvas.extent(), canvas.selection_bounds(), settings.limits)
    bounds = area.bounds
    selection_mask = None
    if area.from_selection:
        raw = canvas.selection_mask(bounds)
        if not is_fully_selected(raw):
            selection_mask = raw
    mask_image = _inpainting_mask(canvas, bounds, selection_mask)
    pixels = canvas.visible_pixels(bounds)
    mode = resolve_mode(
        settings.mode, has_content=has_visible_pixels(pixels), has_mask=mask_image is not None
    )
    sources = JobSources()
    if mode != TXT2IMG:
        source = flatten_on_white(bgra_to_qimage(pixels, bounds.extent))
        image_b64 = encode_base64(scaled(source, area.generation))
        mask_b64 = None
        if mode == INPAINTING:
            if mask_image is None:  # inpainting asked for a plain rectangle: repaint it all
                mask_image = QImage(bounds.width, bounds.height, QImage.Format_Grayscale8)
                mask_image.fill(QColor(255, 255, 255))
            # PNG: exact like lossless WebP, and about 4x faster to encode for a mask.
            mask_b64 = encode_base64(scaled(mask_image, area.generation), fmt="png")
        sources = JobSources(image_b64, mask_b64)
    payload = build_payload(settings, area.generation, mode, sources)
    return PreparedJob(settings, area, mode, payload, selection_mask)


def _inpainting_mask(
    canvas: CanvasSource, bounds: Bounds, selection_mask: bytes | None
) -> QImage | None:
    layer = canvas.mask_layer_pixels(bounds)
    if layer is not None and has_visible_pixels(layer):
        return layer_to_mask(bgra_to_qimage(layer, bounds.extent))
    if selection_mask is not None:
        return mask_to_qimage(selection_mask, bounds.extent)
    return None


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def group_name(prompt: str, mode: str) -> str:
    return f"Horde {mode}: {_shorten(prompt, GROUP_NAME_CHARS)}"


def layer_name(prompt: str, seed: str) -> str:
    return f"{_shorten(prompt, LAYER_NAME_CHARS)} [seed {seed or '?'}]"
