"""Where a job reads from the canvas, at what size it is generated, and where results go back.

Pure arithmetic on small value types (no Qt, no Krita) so it can be checked exhaustively.
Scaling uses exact fractions: a float scale like 1024/1000 can land a side one pixel above
the maximum, which rounding up to 64 would then turn into a whole extra block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

SIDE_MULTIPLE = 64
MIN_SIDE = 64
MAX_SIDE = 3072
# Without a selection, a canvas counts as "large" when generating all of it would have to
# shrink it more than this factor per side: the artist then gets a centred square instead.
LARGE_CANVAS_FACTOR = 2


class GeometryError(ValueError):
    """A selection or size setting that no job can be built from."""


@dataclass(frozen=True)
class Extent:
    """A width and height in pixels."""

    width: int
    height: int

    @property
    def short_side(self) -> int:
        return min(self.width, self.height)

    @property
    def long_side(self) -> int:
        return max(self.width, self.height)

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def is_empty(self) -> bool:
        return self.width <= 0 or self.height <= 0


@dataclass(frozen=True)
class Bounds:
    """A rectangle in canvas pixels: top-left corner and extent."""

    x: int
    y: int
    width: int
    height: int

    @property
    def extent(self) -> Extent:
        return Extent(self.width, self.height)

    @property
    def right(self) -> int:
        return self.x + self.width

    @property
    def bottom(self) -> int:
        return self.y + self.height

    def is_empty(self) -> bool:
        return self.width <= 0 or self.height <= 0

    def intersect(self, other: Bounds) -> Bounds:
        """The overlap of both rectangles (empty, with zero extent, when they do not touch)."""
        x = max(self.x, other.x)
        y = max(self.y, other.y)
        right = min(self.right, other.right)
        bottom = min(self.bottom, other.bottom)
        return Bounds(x, y, max(0, right - x), max(0, bottom - y))


@dataclass(frozen=True)
class SizeLimits:
    """The artist's min and max generation size (sides in pixels, multiples of 64)."""

    min_size: int = 512
    max_size: int = 1024

    def validate(self) -> None:
        for label, value in (("min size", self.min_size), ("max size", self.max_size)):
            if value % SIDE_MULTIPLE or not MIN_SIDE <= value <= MAX_SIDE:
                raise GeometryError(
                    f"{label} must be a multiple of {SIDE_MULTIPLE} between {MIN_SIDE} and"
                    f" {MAX_SIDE}, got {value}"
                )
        if self.min_size > self.max_size:
            raise GeometryError(
                f"min size ({self.min_size}) must not be larger than max size ({self.max_size})"
            )


@dataclass(frozen=True)
class JobArea:
    """What a job covers. Results go to `bounds` (the selection on the canvas). The horde gets
    `context`: a rectangle around `bounds` with the aspect ratio of `generation` (up to a
    pixel of rounding), so the image is scaled uniformly, never stretched; the results are
    scaled back to `context` and cropped to `bounds`. `clamped_to` is the pixel budget
    (width*height) of the largest worker when it made the generation size smaller."""

    bounds: Bounds
    generation: Extent
    from_selection: bool
    context: Bounds
    clamped_to: int | None = None


def round_up(value: int | Fraction, multiple: int = SIDE_MULTIPLE) -> int:
    """Smallest multiple of `multiple` that is >= value (and at least one multiple)."""
    return max(multiple, math.ceil(Fraction(value) / multiple) * multiple)


def exact_generation_scale(area: Extent, limits: SizeLimits) -> Fraction:
    """Factor that brings the short side to at least min and the long side to at most max.

    The max wins when both cannot hold (a very thin area): workers refuse oversized images,
    while a short side under min only costs quality.
    """
    scale = Fraction(1)
    if area.short_side * scale < limits.min_size:
        scale = Fraction(limits.min_size, area.short_side)
    if area.long_side * scale > limits.max_size:
        scale = Fraction(limits.max_size, area.long_side)
    return scale


def generation_extent(area: Extent, limits: SizeLimits) -> Extent:
    """Generation size of an area: scaled by `exact_generation_scale`, aspect kept, then each
    side rounded up to a multiple of 64.

    Guarantees (with limits valid): both sides are multiples of 64 in [64, max_size]; each side
    is at most 63 px above the exactly scaled side; when the area's aspect ratio allows it
    (long/short <= max/min) the short side is >= min_size.
    """
    if area.is_empty():
        raise GeometryError(f"the area is empty ({area.width}x{area.height} px)")
    limits.validate()
    scale = exact_generation_scale(area, limits)
    return Extent(round_up(area.width * scale), round_up(area.height * scale))


def fit_pixels(area: Extent, generation: Extent, max_pixels: int) -> Extent:
    """The largest size of the area's aspect (sides multiples of 64) whose width*height fits
    in `max_pixels` (a worker's limit), when `generation` does not; else `generation`.
    Never under 64x64, the smallest size there is."""
    if generation.pixels <= max_pixels:
        return generation
    wide = area.width >= area.height
    long_area, short_area = (area.width, area.height) if wide else (area.height, area.width)
    long_side = (generation.long_side // SIDE_MULTIPLE) * SIDE_MULTIPLE
    while long_side > SIDE_MULTIPLE:
        short_side = round_up(Fraction(long_side * short_area, long_area))
        if long_side * short_side <= max_pixels:
            break
        long_side -= SIDE_MULTIPLE
    short_side = round_up(Fraction(long_side * short_area, long_area))
    return Extent(long_side, short_side) if wide else Extent(short_side, long_side)


def context_bounds(bounds: Bounds, generation: Extent, canvas: Extent) -> Bounds:
    """The smallest rectangle with the generation's aspect that covers `bounds`, centred on
    it and moved inside the canvas where the canvas is large enough, so the horde sees the
    surrounding pixels instead of a stretched selection. Where the canvas is too small on a
    side it reaches past the canvas there (those pixels read as transparent)."""
    scale = min(
        Fraction(generation.width, bounds.width), Fraction(generation.height, bounds.height)
    )
    width = max(bounds.width, math.ceil(generation.width / scale))
    height = max(bounds.height, math.ceil(generation.height / scale))

    def place(start: int, size: int, span: int, limit: int) -> int:
        origin = start - (span - size) // 2
        if span <= limit:
            origin = min(max(origin, 0), limit - span)
        return origin

    return Bounds(
        place(bounds.x, bounds.width, width, canvas.width),
        place(bounds.y, bounds.height, height, canvas.height),
        width,
        height,
    )


def default_area(canvas: Extent, limits: SizeLimits) -> Bounds:
    """The area of a job without a selection: the whole canvas, or a centred square of the min
    size when the canvas is large (see LARGE_CANVAS_FACTOR)."""
    if canvas.long_side > limits.max_size * LARGE_CANVAS_FACTOR:
        side = min(limits.min_size, canvas.short_side)
        return Bounds((canvas.width - side) // 2, (canvas.height - side) // 2, side, side)
    return Bounds(0, 0, canvas.width, canvas.height)


def job_area(
    canvas: Extent, selection: Bounds | None, limits: SizeLimits, max_pixels: int | None = None
) -> JobArea:
    """The canvas area a job reads and writes, and the size it is generated at.

    A selection partly outside the canvas is cut to the canvas (there are no pixels to read
    outside it); a selection entirely outside is an error. `max_pixels`, when known, is the
    largest width*height a worker of the chosen model takes: a larger size is shrunk to fit.
    """
    if canvas.is_empty():
        raise GeometryError(f"the canvas is empty ({canvas.width}x{canvas.height} px)")
    limits.validate()
    if selection is None or selection.is_empty():
        bounds = default_area(canvas, limits)
        from_selection = False
    else:
        bounds = selection.intersect(Bounds(0, 0, canvas.width, canvas.height))
        if bounds.is_empty():
            raise GeometryError(
                "the selection lies entirely outside the canvas: select something on the canvas"
            )
        from_selection = True
    generation = generation_extent(bounds.extent, limits)
    clamped_to = None
    if max_pixels is not None and generation.pixels > max_pixels:
        generation = fit_pixels(bounds.extent, generation, max_pixels)
        clamped_to = max_pixels
    context = context_bounds(bounds, generation, canvas)
    return JobArea(bounds, generation, from_selection, context, clamped_to)


@dataclass(frozen=True)
class Sides:
    """How far to extend the canvas on each side, in pixels (outpainting)."""

    left: int = 0
    top: int = 0
    right: int = 0
    bottom: int = 0

    def is_empty(self) -> bool:
        return not (self.left or self.top or self.right or self.bottom)

    def validate(self) -> None:
        for name in ("left", "top", "right", "bottom"):
            value = getattr(self, name)
            if not 0 <= value <= MAX_SIDE:
                raise GeometryError(f"extend {name} must be between 0 and {MAX_SIDE}, got {value}")


def overflow(canvas: Extent, selection: Bounds) -> Sides:
    """How far a selection reaches past each edge of the canvas."""
    return Sides(
        max(0, -selection.x),
        max(0, -selection.y),
        max(0, selection.right - canvas.width),
        max(0, selection.bottom - canvas.height),
    )


@dataclass(frozen=True)
class Outpaint:
    """An outpainting job after the canvas was extended: `canvas` is the new size, `old` where
    the old canvas now lies in it, `bounds` the area generated: the new strips and as wide a
    band of the old pixels beside them (the context the horde continues)."""

    canvas: Extent
    old: Bounds
    bounds: Bounds

    def mask(self, area: Bounds) -> bytes:
        """1 byte per pixel over `area`: 255 on the new canvas (repaint), 0 on the old."""
        old = self.old
        rows = []
        for y in range(area.y, area.bottom):
            if not old.y <= y < old.bottom:
                rows.append(b"\xff" * area.width)
                continue
            left = min(max(old.x - area.x, 0), area.width)
            right = min(max(area.right - old.right, 0), area.width - left)
            rows.append(b"\xff" * left + bytes(area.width - left - right) + b"\xff" * right)
        return b"".join(rows)


def _span(size: int, before: int, after: int, other_axis: bool) -> tuple[int, int]:
    """The range of the generated area on one axis of the new canvas. A strip on the other
    axis spans this whole axis; else the new strips here and, beside each, a band of old pixels
    as wide as the strip (at most the old canvas): the horde sees as much as it paints."""
    total = before + size + after
    if other_axis or (before and after) or not (before or after):
        return 0, total
    if after:
        return before + size - min(size, after), total
    return 0, before + min(size, before)


def outpaint_plan(canvas: Extent, sides: Sides) -> Outpaint:
    """The extended canvas and the area to generate for extending `canvas` by `sides`."""
    sides.validate()
    if sides.is_empty():
        raise GeometryError("choose how far to extend the canvas (left, top, right or bottom)")
    vertical = bool(sides.top or sides.bottom)
    horizontal = bool(sides.left or sides.right)
    x0, x1 = _span(canvas.width, sides.left, sides.right, vertical)
    y0, y1 = _span(canvas.height, sides.top, sides.bottom, horizontal)
    new = Extent(canvas.width + sides.left + sides.right, canvas.height + sides.top + sides.bottom)
    old = Bounds(sides.left, sides.top, canvas.width, canvas.height)
    return Outpaint(new, old, Bounds(x0, y0, x1 - x0, y1 - y0))
