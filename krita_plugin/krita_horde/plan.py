"""What Generate would do now, shown before it is pressed: the area, the generation size (and
whether a worker of the model takes it), the mode "auto" would choose and why. Read from the
canvas through the CanvasSource protocol (no Krita here); cheap enough for the GUI thread:
selection bounds, and for "auto" the selection's shape and alpha bytes up to a size limit."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from PyQt5.QtGui import QImage

from .capacity import Capacity, model_capacity
from .colorspace import has_alpha
from .geometry import JobArea, job_area
from .images import has_visible_pixels, is_fully_selected, qimage_to_bgra
from .payload import IMG2IMG, INPAINTING, TXT2IMG
from .preparation import CanvasSource
from .replies import WorkerInfo
from .settings import JobSettings

# Above this many pixels "auto" is not checked ahead (reading them would stall Krita's GUI
# thread for a moment on every update); the mode is then decided when the job is sent.
SCAN_LIMIT_PIXELS = 4_000_000


class ModeReason(str, Enum):
    REQUESTED = "requested"  # the artist chose the mode
    MASK_LAYER = "mask_layer"  # a painted "Horde mask" layer: inpainting
    SHAPED_SELECTION = "shaped_selection"  # a non-rectangular/feathered selection: inpainting
    CONTENT = "content"  # the selection has visible pixels: img2img
    EMPTY = "empty"  # the selection is empty: txt2img
    NOT_CHECKED = "not_checked"  # too large to look at ahead: decided when sent


@dataclass(frozen=True)
class JobPlan:
    area: JobArea
    mode: str | None  # None with NOT_CHECKED
    reason: ModeReason
    capacity: Capacity
    workers: int  # live workers able to take it (0 with UNKNOWN)
    max_pixels: int | None  # the largest of their limits
    # With NO_WORKER: why, from the workers' own flags (/workers).
    missing: MissingWorker | None = None
    model_workers: int = 0  # live workers of the model, whatever they take


class MissingWorker(str, Enum):
    """Why no live worker takes the job."""

    MODEL = "model"  # nobody serves the model at all
    NSFW = "nsfw"  # its workers all refuse NSFW requests
    MODE = "mode"  # its workers do not take this mode (img2img/inpainting switched off)


def auto_mode(
    canvas: CanvasSource, area: JobArea, scan_limit: int = SCAN_LIMIT_PIXELS
) -> tuple[str | None, ModeReason]:
    """The mode "auto" picks for this area, by the same rules as build_job."""
    bounds = area.bounds
    fmt = canvas.pixel_format()
    # Float pixels take a while to convert: not on the GUI thread for a passing look.
    if bounds.width * bounds.height > scan_limit or fmt.depth in ("F16", "F32"):
        return None, ModeReason.NOT_CHECKED
    layer = canvas.mask_layer_pixels(bounds)
    if layer is not None and has_alpha(bytes(layer), fmt):
        return INPAINTING, ModeReason.MASK_LAYER
    if area.from_selection and not is_fully_selected(bytes(canvas.selection_mask(bounds))):
        return INPAINTING, ModeReason.SHAPED_SELECTION
    pixels = canvas.visible_pixels(bounds)
    if isinstance(pixels, QImage):  # 8-bit sRGB, converted by Krita
        visible = has_visible_pixels(qimage_to_bgra(pixels))
    else:
        visible = has_alpha(bytes(pixels), fmt)
    if visible:
        return IMG2IMG, ModeReason.CONTENT
    return TXT2IMG, ModeReason.EMPTY


def plan_job(
    canvas: CanvasSource, settings: JobSettings, workers: list[WorkerInfo] | None
) -> JobPlan:
    """The plan for the current settings and canvas (GeometryError when there is none)."""
    settings.limits.validate()
    requested = None if settings.mode == "auto" else settings.mode
    model = model_capacity(workers, settings.model, requested, settings.nsfw)
    area = job_area(canvas.extent(), canvas.selection_bounds(), settings.limits, model.max_pixels)
    if settings.mode == "auto":
        mode, reason = auto_mode(canvas, area)
    else:
        mode, reason = settings.mode, ModeReason.REQUESTED
    missing = None
    serving = model_capacity(workers, settings.model, None, False).workers
    if workers is None:
        capacity = Capacity.UNKNOWN
    elif (
        mode is not None
        and model_capacity(workers, settings.model, mode, settings.nsfw).workers == 0
    ) or model.workers == 0:
        capacity = Capacity.NO_WORKER
        if serving == 0:
            missing = MissingWorker.MODEL
        elif settings.nsfw and model_capacity(workers, settings.model, None, True).workers == 0:
            missing = MissingWorker.NSFW
        else:
            missing = MissingWorker.MODE
    else:
        capacity = Capacity.CLAMPED if area.clamped_to is not None else Capacity.FITS
    return JobPlan(area, mode, reason, capacity, model.workers, model.max_pixels, missing, serving)


_REASONS = {
    ModeReason.REQUESTED: "as chosen",
    ModeReason.MASK_LAYER: "the Horde mask layer is painted",
    ModeReason.SHAPED_SELECTION: "the selection is not a plain rectangle",
    ModeReason.CONTENT: "the selection has pixels",
    ModeReason.EMPTY: "the selection is empty",
    ModeReason.NOT_CHECKED: "img2img if it has pixels, else txt2img",
}


def plan_text(plan: JobPlan, model: str) -> str:
    """One or two lines for the docker, e.g. `img2img (the selection has pixels) · 90×600 →
    192×1024`."""
    area, generation = plan.area, plan.area.generation
    mode = plan.mode or "auto"
    size = f"{area.bounds.width}×{area.bounds.height} → {generation.width}×{generation.height}"
    text = f"{mode} ({_REASONS[plan.reason]}) · {size}"
    name = model or "any model"
    if plan.capacity == Capacity.CLAMPED:
        text += (
            f"\nSmaller than your sizes: the largest worker of {name} takes"
            f" {plan.max_pixels or 0:,} pixels."
        )
    elif plan.capacity == Capacity.NO_WORKER:
        text += f"\nNo live worker takes {mode} with {name} now: {_missing_text(plan, mode, name)}"
    return text


def _missing_text(plan: JobPlan, mode: str, name: str) -> str:
    one = plan.model_workers == 1
    count = f"{plan.model_workers} worker{'' if one else 's'}"
    if plan.missing == MissingWorker.NSFW:
        refuse = "refuses" if one else "refuse"
        return f"its {count} {refuse} NSFW requests; turn Allow NSFW off or pick another model."
    if plan.missing == MissingWorker.MODE:
        do = "does" if one else "do"
        return f"its {count} {do} not take {mode}; pick another mode or model."
    return "nobody serves it; pick a model that shows workers, or the job would wait."
