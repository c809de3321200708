"""Pixels of 16-bit, float and grey documents to 8-bit sRGB B,G,R,A and back; CMYK, Lab, XYZ
and YCbCr documents accepted for Krita's own conversion; the alpha check of any format."""

from __future__ import annotations

import struct

import pytest

from krita_horde.colorspace import (
    ColorSpaceError,
    PixelFormat,
    from_bgra8,
    has_alpha,
    to_bgra8,
)

BGRA = bytes([10, 128, 250, 255, 0, 0, 0, 0, 255, 255, 255, 128])


@pytest.mark.parametrize(
    "fmt",
    [
        PixelFormat("RGBA", "U8"),
        PixelFormat("RGBA", "U16"),
        PixelFormat("RGBA", "F16", linear=True),
        PixelFormat("RGBA", "F32", linear=True),
        PixelFormat("RGBA", "F32", linear=False),
    ],
    ids=lambda fmt: f"{fmt.model}-{fmt.depth}-{'linear' if fmt.linear else 'srgb'}",
)
def test_rgba_round_trips_to_the_same_8_bit_pixels(fmt: PixelFormat) -> None:
    native = from_bgra8(BGRA, fmt)
    assert len(native) == 3 * fmt.pixel_bytes
    assert to_bgra8(native, fmt) == BGRA


def test_float_values_are_rgba_ordered_and_linear() -> None:
    fmt = PixelFormat("RGBA", "F32", linear=True)
    red, green, blue, alpha = struct.unpack("<4f", from_bgra8(bytes([0, 0, 255, 255]), fmt))
    assert (red, green, blue, alpha) == (1.0, 0.0, 0.0, 1.0)
    # Out-of-range and NaN values of a float document are clamped, not wrapped.
    pixel = struct.pack("<4f", 2.0, -1.0, float("nan"), 0.5)
    assert to_bgra8(pixel, fmt) == bytes([0, 0, 255, 128])


def test_grey_becomes_grey_bgra_and_colour_becomes_its_luminance() -> None:
    fmt = PixelFormat("GRAYA", "U8")
    assert to_bgra8(bytes([77, 200]), fmt) == bytes([77, 77, 77, 200])
    assert from_bgra8(bytes([255, 255, 255, 255, 0, 0, 0, 0]), fmt) == bytes([255, 255, 0, 0])


@pytest.mark.parametrize(
    ("model", "depth", "profile", "linear"),
    [
        ("RGBA", "F32", "", True),
        ("RGBA", "F16", "Rec2020-elle-V4-g10.icc", True),
        ("RGBA", "U16", "sRGB-elle-V2-srgbtrc.icc", False),
        ("RGBA", "U16", "sRGB-elle-V2-g10.icc", True),
    ],
)
def test_linear_profiles_are_recognised(model, depth, profile, linear) -> None:
    assert PixelFormat.of(model, depth, profile).linear is linear


def test_unknown_models_and_depths_are_refused_with_the_menu_path() -> None:
    with pytest.raises(ColorSpaceError, match=r"HSVA/U8.*Convert Image Color Space"):
        PixelFormat.of("HSVA", "U8")
    with pytest.raises(ColorSpaceError, match=r"LABA/U32.*Convert Image Color Space"):
        PixelFormat.of("LABA", "U32")


@pytest.mark.parametrize(
    ("model", "depth", "profile"),
    [
        ("CMYKA", "U8", "Chemical proof"),
        ("LABA", "U16", "Lab identity built-in"),
        ("XYZA", "F32", "XYZ identity built-in"),
        ("YCbCrA", "U8", "ITU-R BT.709-6 YCbCr ICC V4 profile"),
    ],
)
def test_models_krita_converts_are_accepted_and_left_to_krita(model, depth, profile) -> None:
    fmt = PixelFormat.of(model, depth, profile)
    assert fmt.krita_converts and not fmt.is_native and fmt.profile == profile
    # Results stay 8-bit sRGB: Krita converts the layer they are written into.
    assert from_bgra8(BGRA, fmt) == BGRA
    with pytest.raises(ValueError, match="converted by Krita"):
        to_bgra8(BGRA, fmt)


@pytest.mark.parametrize(
    ("fmt", "transparent", "visible"),
    [
        (PixelFormat("RGBA", "U8"), bytes([9, 9, 9, 0]), bytes([0, 0, 0, 1])),
        (PixelFormat("GRAYA", "U16"), struct.pack("<2H", 500, 0), struct.pack("<2H", 0, 1)),
        (
            PixelFormat("RGBA", "F32"),
            struct.pack("<4f", 1, 1, 1, 0),
            struct.pack("<4f", 0, 0, 0, 0.5),
        ),
        (PixelFormat("CMYKA", "U8"), bytes([0, 9, 9, 9, 0]), bytes([0, 0, 0, 0, 255])),
        (
            PixelFormat("LABA", "U16"),
            struct.pack("<4H", 9, 9, 9, 0),
            struct.pack("<4H", 0, 0, 0, 256),
        ),
    ],
    ids=lambda value: f"{value.model}-{value.depth}" if isinstance(value, PixelFormat) else "",
)
def test_alpha_is_found_in_each_format_without_converting(fmt, transparent, visible) -> None:
    assert not has_alpha(transparent * 3, fmt)
    assert has_alpha(transparent * 2 + visible, fmt)
