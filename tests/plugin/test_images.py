"""Pixel conversions: Krita's BGRA bytes, masks, and the base64 images on the wire."""

from __future__ import annotations

import base64

import pytest
from PyQt5.QtGui import QColor, QImage

from krita_horde.geometry import Extent
from krita_horde.images import (
    ImageDecodeError,
    ImageTooLargeError,
    apply_mask,
    bgra_to_qimage,
    decode_base64,
    encode_base64,
    flatten_on_white,
    has_visible_pixels,
    is_fully_selected,
    layer_to_mask,
    mask_to_qimage,
    qimage_to_bgra,
    qimage_to_mask,
    scaled,
    supports_webp,
)


def test_krita_bgra_bytes_map_to_the_right_colours() -> None:
    # Krita's 8-bit RGBA pixelData is B,G,R,A: this pixel is pure red, half transparent.
    image = bgra_to_qimage(bytes([0, 0, 255, 128]), Extent(1, 1))
    colour = image.pixelColor(0, 0)
    assert (colour.red(), colour.green(), colour.blue(), colour.alpha()) == (255, 0, 0, 128)


def test_qimage_to_bgra_gives_krita_order_from_any_format() -> None:
    image = QImage(2, 1, QImage.Format_RGBA8888)
    image.setPixelColor(0, 0, QColor(10, 20, 30, 255))
    image.setPixelColor(1, 0, QColor(200, 100, 50, 255))
    assert qimage_to_bgra(image) == bytes([30, 20, 10, 255, 50, 100, 200, 255])


def test_bgra_round_trip_is_exact() -> None:
    data = bytes(range(256)) * 3  # 192 px of varied opaque-and-not pixels
    # Opaque pixels round-trip exactly; use alpha 255 everywhere to stay non-premultiplied.
    pixels = bytearray(data)
    pixels[3::4] = b"\xff" * (len(pixels) // 4)
    assert qimage_to_bgra(bgra_to_qimage(bytes(pixels), Extent(16, 12))) == bytes(pixels)


def test_mask_round_trip_survives_qt_row_padding() -> None:
    # 5 px wide: Qt pads Grayscale8 rows to 8 bytes; the bytes must come back unpadded.
    data = bytes(range(15))
    image = mask_to_qimage(data, Extent(5, 3))
    assert image.bytesPerLine() == 8
    assert qimage_to_mask(image) == data


def test_wrong_byte_counts_are_refused_with_the_numbers() -> None:
    with pytest.raises(ValueError, match="expected 16 bytes of BGRA pixels for 2x2, got 3"):
        bgra_to_qimage(b"abc", Extent(2, 2))
    with pytest.raises(ValueError, match="expected 4 mask bytes for 2x2, got 3"):
        mask_to_qimage(b"abc", Extent(2, 2))


def test_flatten_puts_transparency_on_white() -> None:
    image = bgra_to_qimage(bytes([0, 0, 0, 0, 0, 0, 255, 255]), Extent(2, 1))
    flat = flatten_on_white(image)
    assert flat.pixelColor(0, 0) == QColor(255, 255, 255)
    assert flat.pixelColor(1, 0) == QColor(255, 0, 0)


def test_layer_mask_is_white_where_painted_white() -> None:
    # painted white opaque, unpainted (transparent), painted black
    layer = bgra_to_qimage(bytes([255, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 255]), Extent(3, 1))
    assert qimage_to_mask(layer_to_mask(layer)) == bytes([255, 0, 0])


def test_apply_mask_cuts_alpha_to_the_selection_shape() -> None:
    image = bgra_to_qimage(bytes([0, 255, 0, 255]) * 3, Extent(3, 1))
    masked = qimage_to_bgra(apply_mask(image, bytes([255, 0, 128])))
    assert masked[3::4] == bytes([255, 0, 128])
    assert masked[0:4] == bytes([0, 255, 0, 255])


def test_selection_and_content_checks() -> None:
    assert is_fully_selected(bytes([255] * 10))
    assert not is_fully_selected(bytes([255] * 9 + [254]))
    assert not has_visible_pixels(bytes([9, 9, 9, 0] * 100))
    assert has_visible_pixels(bytes([0, 0, 0, 0] * 99 + [0, 0, 0, 1]))


@pytest.mark.parametrize("fmt", ["webp", "png"])
def test_lossless_encoding_round_trips_masks_exactly(fmt: str) -> None:
    if fmt == "webp" and not supports_webp():
        pytest.skip("this Qt has no WebP plug-in")
    mask = bytes((x * 7 + y * 13) % 256 for y in range(33) for x in range(47))
    text = encode_base64(mask_to_qimage(mask, Extent(47, 33)), lossless=True, fmt=fmt)
    raw = base64.b64decode(text)
    assert raw[:4] == (b"RIFF" if fmt == "webp" else b"\x89PNG")
    assert qimage_to_mask(decode_base64(text)) == mask


def test_lossy_webp_is_close_and_the_default_when_available() -> None:
    if not supports_webp():
        pytest.skip("this Qt has no WebP plug-in")
    image = QImage(64, 64, QImage.Format_RGB32)
    image.fill(QColor(200, 30, 90))
    text = encode_base64(image)
    assert base64.b64decode(text)[8:12] == b"WEBP"
    colour = decode_base64(text).pixelColor(32, 32)
    assert abs(colour.red() - 200) <= 3 and abs(colour.blue() - 90) <= 3


def test_scaled_reaches_the_exact_extent() -> None:
    image = QImage(100, 50, QImage.Format_ARGB32)
    out = scaled(image, Extent(64, 64))
    assert (out.width(), out.height()) == (64, 64)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the image is missing"),
        ("not base64 at all!", "not valid base64"),
        (base64.b64encode(b"RIFF1234WEBPgarbage").decode(), "not an image Qt can read"),
        ("https://r2.example/img.webp", "image URL instead of the image"),
    ],
)
def test_bad_images_raise_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(ImageDecodeError, match=message):
        decode_base64(text)


def test_image_over_the_byte_limit_is_refused_before_decoding() -> None:
    image = QImage(64, 64, QImage.Format_RGB32)
    image.fill(QColor(10, 20, 30))
    text = encode_base64(image, fmt="png")
    size = len(base64.b64decode(text))
    assert decode_base64(text, max_bytes=size).width() == 64
    too_many_bytes = f"the image is {size} bytes; the plug-in accepts at most 100 bytes per image"
    with pytest.raises(ImageTooLargeError, match=too_many_bytes):
        decode_base64(text, max_bytes=100)
    with pytest.raises(ImageTooLargeError, match=r"64x64 pixels; the plug-in accepts at most"):
        decode_base64(text, max_pixels=63 * 63)
