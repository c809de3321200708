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
    SizeLimits,
    exact_generation_scale,
    generation_extent,
    job_area,
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
