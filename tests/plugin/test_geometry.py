"""Generation geometry: sizes the horde accepts, aspect kept, results placed on the selection."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from krita_horde.geometry import (
    Bounds,
    Extent,
    GeometryError,
    Sides,
    SizeLimits,
    exact_generation_scale,
    generation_extent,
    job_area,
    outpaint_plan,
    overflow,
)

sides = st.integers(min_value=1, max_value=20_000)
multiples = st.integers(min_value=1, max_value=48).map(lambda k: k * 64)


@st.composite
def limits(draw: st.DrawFn) -> SizeLimits:
    low = draw(multiples)
    high = draw(multiples.filter(lambda value: value >= low))
    return SizeLimits(low, high)


@given(width=sides, height=sides, size_limits=limits())
def test_generation_size_is_what_the_horde_accepts_and_keeps_aspect(
    width: int, height: int, size_limits: SizeLimits
) -> None:
    area = Extent(width, height)
    generated = generation_extent(area, size_limits)
    scale = exact_generation_scale(area, size_limits)
    for side, exact in ((generated.width, width * scale), (generated.height, height * scale)):
        assert side % 64 == 0
        assert 64 <= side <= size_limits.max_size
        # Rounded up, never by a whole block: aspect is kept within the rounding.
        assert exact <= side < exact + 64
    # The long side never exceeds max; the short side reaches min whenever the aspect allows.
    if Fraction(area.long_side, area.short_side) <= Fraction(
        size_limits.max_size, size_limits.min_size
    ):
        assert generated.short_side >= size_limits.min_size


@given(width=sides, height=sides, size_limits=limits())
def test_area_already_within_limits_is_not_rescaled(
    width: int, height: int, size_limits: SizeLimits
) -> None:
    area = Extent(width, height)
    scale = exact_generation_scale(area, size_limits)
    fits = area.short_side >= size_limits.min_size and area.long_side <= size_limits.max_size
    assert (scale == 1) == fits


canvas_sides = st.integers(min_value=1, max_value=8000)


@given(
    canvas_w=canvas_sides,
    canvas_h=canvas_sides,
    x=st.integers(-9000, 9000),
    y=st.integers(-9000, 9000),
    w=st.integers(1, 9000),
    h=st.integers(1, 9000),
    size_limits=limits(),
)
def test_placement_covers_exactly_the_selection_inside_the_canvas(
    canvas_w: int, canvas_h: int, x: int, y: int, w: int, h: int, size_limits: SizeLimits
) -> None:
    canvas = Extent(canvas_w, canvas_h)
    selection = Bounds(x, y, w, h)
    inside = selection.intersect(Bounds(0, 0, canvas_w, canvas_h))
    if inside.is_empty():
        with pytest.raises(GeometryError, match="outside the canvas"):
            job_area(canvas, selection, size_limits)
        return
    area = job_area(canvas, selection, size_limits)
    assert area.from_selection
    assert area.bounds == inside
    assert area.bounds.x >= 0 and area.bounds.right <= canvas_w
    assert area.bounds.y >= 0 and area.bounds.bottom <= canvas_h
    assert area.generation == generation_extent(inside.extent, size_limits)


def test_no_selection_uses_the_whole_canvas() -> None:
    area = job_area(Extent(1200, 800), None, SizeLimits(512, 1024))
    assert area.bounds == Bounds(0, 0, 1200, 800)
    assert not area.from_selection
    # 1200x800 → long side to 1024: 1024 x 682.67 → 1024 x 704.
    assert area.generation == Extent(1024, 704)


def test_no_selection_on_a_large_canvas_uses_a_centred_square_of_min_size() -> None:
    area = job_area(Extent(4096, 3000), None, SizeLimits(512, 1024))
    assert area.bounds == Bounds((4096 - 512) // 2, (3000 - 512) // 2, 512, 512)
    assert area.generation == Extent(512, 512)


def test_tiny_selection_is_scaled_up_to_min_size() -> None:
    area = job_area(Extent(1000, 1000), Bounds(10, 20, 30, 15), SizeLimits(512, 1024))
    assert area.bounds == Bounds(10, 20, 30, 15)
    # 30x15 → short side to 512: 1024 x 512.
    assert area.generation == Extent(1024, 512)


def test_thin_selection_keeps_max_and_gives_up_min() -> None:
    generated = generation_extent(Extent(5000, 10), SizeLimits(512, 1024))
    assert generated == Extent(1024, 64)


def test_partly_outside_selection_is_cut_to_the_canvas() -> None:
    area = job_area(Extent(800, 600), Bounds(-100, 500, 300, 300), SizeLimits(512, 1024))
    assert area.bounds == Bounds(0, 500, 200, 100)


def test_empty_selection_counts_as_no_selection() -> None:
    area = job_area(Extent(640, 640), Bounds(5, 5, 0, 0), SizeLimits(512, 1024))
    assert area.bounds == Bounds(0, 0, 640, 640)


@pytest.mark.parametrize(
    ("size_limits", "message"),
    [
        (SizeLimits(500, 1024), "min size must be a multiple of 64"),
        (SizeLimits(512, 4096), "max size must be a multiple of 64 between 64 and 3072"),
        (SizeLimits(1024, 512), "must not be larger than max size"),
    ],
)
def test_bad_size_limits_are_refused_clearly(size_limits: SizeLimits, message: str) -> None:
    with pytest.raises(GeometryError, match=message):
        job_area(Extent(100, 100), None, size_limits)


@given(
    canvas_w=canvas_sides,
    canvas_h=canvas_sides,
    x=st.integers(0, 8000),
    y=st.integers(0, 8000),
    w=st.integers(1, 8000),
    h=st.integers(1, 8000),
    size_limits=limits(),
)
def test_context_covers_the_selection_with_the_generation_aspect(
    canvas_w: int, canvas_h: int, x: int, y: int, w: int, h: int, size_limits: SizeLimits
) -> None:
    """Never stretched: the context read and generated has the generation's aspect (up to one
    pixel of rounding), covers the selection, and stays on the canvas where it fits."""
    canvas = Extent(canvas_w, canvas_h)
    selection = Bounds(x, y, w, h).intersect(Bounds(0, 0, canvas_w, canvas_h))
    if selection.is_empty():
        return
    area = job_area(canvas, selection, size_limits)
    context, generation = area.context, area.generation
    assert context.intersect(area.bounds) == area.bounds
    # One factor on both axes maps the generation onto the context, within a canvas pixel.
    scale = min(
        Fraction(context.width, generation.width), Fraction(context.height, generation.height)
    )
    assert context.width - generation.width * scale < 1
    assert context.height - generation.height * scale < 1
    for start, span, limit in (
        (context.x, context.width, canvas_w),
        (context.y, context.height, canvas_h),
    ):
        if span <= limit:
            assert start >= 0 and start + span <= limit


def test_thin_selection_is_generated_with_context_not_stretched() -> None:
    """The issue's 90x600: generated at 192x1024 from a 113x600 context around it (it used to
    be 90x600 stretched to 192x1024, 25% wider)."""
    area = job_area(Extent(400, 800), Bounds(100, 100, 90, 600), SizeLimits(512, 1024))
    assert area.generation == Extent(192, 1024)
    assert area.context == Bounds(89, 100, 113, 600)


def test_context_moves_inside_the_canvas_at_an_edge() -> None:
    area = job_area(Extent(400, 800), Bounds(0, 100, 90, 600), SizeLimits(512, 1024))
    assert area.context == Bounds(0, 100, 113, 600)


def test_max_pixels_shrinks_the_size_keeping_the_aspect() -> None:
    """A worker taking at most 512x512 pixels: the default 1024 max is brought down to fit."""
    area = job_area(Extent(1200, 800), None, SizeLimits(512, 1024), max_pixels=512 * 512)
    assert area.generation.pixels <= 512 * 512
    assert area.generation == Extent(576, 384)
    assert area.clamped_to == 512 * 512
    unclamped = job_area(Extent(1200, 800), None, SizeLimits(512, 1024), max_pixels=2**20)
    assert unclamped.generation == Extent(1024, 704) and unclamped.clamped_to is None


@given(width=sides, height=sides, size_limits=limits(), budget=st.integers(64 * 64, 3072 * 3072))
def test_max_pixels_is_always_respected(
    width: int, height: int, size_limits: SizeLimits, budget: int
) -> None:
    area = job_area(Extent(width, height), None, size_limits, max_pixels=budget)
    generation = area.generation
    assert generation.pixels <= budget
    assert generation.width % 64 == 0 and generation.height % 64 == 0


def test_outpainting_right_generates_the_strip_and_a_band_of_old_pixels() -> None:
    plan = outpaint_plan(Extent(200, 100), Sides(right=64))
    assert plan.canvas == Extent(264, 100)
    assert plan.old == Bounds(0, 0, 200, 100)
    assert plan.bounds == Bounds(136, 0, 128, 100)
    mask = plan.mask(plan.bounds)
    assert mask[:128] == bytes(64) + b"\xff" * 64  # first row: old band kept, new repainted


def test_outpainting_left_and_top_cover_both_strips() -> None:
    plan = outpaint_plan(Extent(200, 100), Sides(left=30, top=20))
    assert plan.canvas == Extent(230, 120)
    assert plan.old == Bounds(30, 20, 200, 100)
    assert plan.bounds == Bounds(0, 0, 230, 120)
    mask = plan.mask(plan.bounds)
    assert mask[:230] == b"\xff" * 230  # the top strip
    row = 50 * 230
    assert mask[row : row + 31] == b"\xff" * 30 + b"\x00"


def test_a_selection_reaching_past_the_edges_says_how_far() -> None:
    assert overflow(Extent(100, 100), Bounds(-10, 50, 130, 80)) == Sides(10, 0, 20, 30)


def test_outpainting_needs_a_side() -> None:
    with pytest.raises(GeometryError, match="choose how far to extend"):
        outpaint_plan(Extent(10, 10), Sides())
