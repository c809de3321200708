"""Conversions between Krita pixel bytes, QImage and the base64 images the horde exchanges.

Krita's `pixelData` of an 8-bit RGBA document is B,G,R,A per pixel, row-major, which is exactly
the in-memory layout of `QImage.Format_ARGB32` on little-endian machines (every platform Krita
ships on). Masks are one byte per pixel (`Format_Grayscale8`); white means "repaint".
QImage rows are padded to 4 bytes, so 1-byte-per-pixel data is copied row by row.
"""

from __future__ import annotations

import base64
import binascii

from PyQt5.QtCore import QBuffer, QByteArray, QIODevice, Qt
from PyQt5.QtGui import QColor, QImage, QImageReader, QImageWriter, QPainter

from .geometry import Bounds, Extent
from .network import byte_size_text

# What the public horde's workers send; small enough for the request body limits.
LOSSY_QUALITY = 95
# Qt's WebP writer switches to lossless encoding at quality 100 (masks must stay exact).
LOSSLESS_QUALITY = 100

# Limits on an image a horde sends back. The plug-in asks for at most 3072 px a side (the
# form's maximum); these leave room for a 4x upscaler on a 2048 px image and for lossless
# formats. Anything beyond comes from a broken or hostile horde, and decoding it would make
# Qt allocate 4 bytes per pixel (3.6 GB for 30000x30000): it is refused from the file header.
MAX_RESULT_SIDE = 8192
MAX_RESULT_PIXELS = MAX_RESULT_SIDE * MAX_RESULT_SIDE
MAX_RESULT_BYTES = 64 * 1024 * 1024


class ImageDecodeError(ValueError):
    """Bytes that are not a readable image."""


class ImageTooLargeError(ImageDecodeError):
    """An image beyond MAX_RESULT_BYTES / MAX_RESULT_PIXELS, refused before decoding."""


def supports_webp() -> bool:
    """True when Qt's imageformats plug-in for WebP is installed (PyPI's PyQt5 and Krita's
    official builds have it; a stripped-down Qt may not, and PNG is used instead)."""
    return (
        b"webp" in QImageWriter.supportedImageFormats()
        and b"webp" in QImageReader.supportedImageFormats()
    )


def bgra_to_qimage(data: bytes, extent: Extent) -> QImage:
    """A QImage owning a copy of Krita's B,G,R,A pixel bytes."""
    expected = extent.width * extent.height * 4
    if len(data) != expected:
        raise ValueError(
            f"expected {expected} bytes of BGRA pixels for {extent.width}x{extent.height},"
            f" got {len(data)}"
        )
    image = QImage(data, extent.width, extent.height, extent.width * 4, QImage.Format_ARGB32)
    return image.copy()


def qimage_to_bgra(image: QImage) -> bytes:
    """Krita's B,G,R,A bytes (non-premultiplied) of any QImage."""
    image = image.convertToFormat(QImage.Format_ARGB32)
    # 32-bit rows are never padded, so the buffer is exactly width*height*4 bytes.
    size = image.width() * image.height() * 4
    return bytes(image.constBits().asstring(size))


def mask_to_qimage(data: bytes, extent: Extent) -> QImage:
    """A Grayscale8 QImage of one-byte-per-pixel mask data (Krita selection pixels)."""
    width, height = extent.width, extent.height
    if len(data) != width * height:
        raise ValueError(
            f"expected {width * height} mask bytes for {width}x{height}, got {len(data)}"
        )
    image = QImage(data, width, height, width, QImage.Format_Grayscale8)
    return image.copy()


def qimage_to_mask(image: QImage) -> bytes:
    """One byte per pixel (the grey value) of any QImage, without Qt's row padding."""
    image = image.convertToFormat(QImage.Format_Grayscale8)
    width, height, stride = image.width(), image.height(), image.bytesPerLine()
    raw = bytes(image.constBits().asstring(stride * height))
    if stride == width:
        return raw
    return b"".join(raw[row * stride : row * stride + width] for row in range(height))


def flatten_on_white(image: QImage) -> QImage:
    """An opaque copy of the image over white: what the artist sees on a white canvas.

    Transparent pixels keep arbitrary colour values in Krita (usually black); a model would
    read them as content.
    """
    flat = QImage(image.width(), image.height(), QImage.Format_RGB32)
    flat.fill(QColor(255, 255, 255))
    painter = QPainter(flat)
    painter.drawImage(0, 0, image)
    painter.end()
    return flat


def layer_to_mask(image: QImage) -> QImage:
    """A mask from a painted layer: white opaque paint = 255, nothing painted = 0."""
    black = QImage(image.width(), image.height(), QImage.Format_RGB32)
    black.fill(QColor(0, 0, 0))
    painter = QPainter(black)
    painter.drawImage(0, 0, image)
    painter.end()
    return black.convertToFormat(QImage.Format_Grayscale8)


def scaled(image: QImage, extent: Extent) -> QImage:
    """The image resized to exactly `extent` (aspect may change by the 64-px rounding)."""
    if image.width() == extent.width and image.height() == extent.height:
        return image
    return image.scaled(extent.width, extent.height, Qt.IgnoreAspectRatio, Qt.SmoothTransformation)


def is_fully_selected(mask: bytes) -> bool:
    """True when every mask byte is 255 (a plain rectangular selection)."""
    return mask.count(255) == len(mask)


def has_visible_pixels(bgra: bytes) -> bool:
    """True when any pixel has a non-zero alpha (bytes.strip runs in C, fast on 16 Mpx)."""
    return bool(bgra[3::4].strip(b"\x00"))


def image_format() -> str:
    """The format images are sent in: "webp" when Qt can write it, else "png"."""
    return "webp" if supports_webp() else "png"


def encode_image(image: QImage, *, lossless: bool = False, fmt: str | None = None) -> bytes:
    """Image file bytes (WebP if available, else PNG; `fmt` forces one)."""
    fmt = fmt or image_format()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.WriteOnly)
    writer = QImageWriter(buffer, fmt.encode("ascii"))
    if fmt == "webp":
        writer.setQuality(LOSSLESS_QUALITY if lossless else LOSSY_QUALITY)
    ok = writer.write(image)
    buffer.close()
    if not ok:
        raise ValueError(f"could not encode a {fmt} image: {writer.errorString()}")
    return bytes(data)


def encode_base64(image: QImage, *, lossless: bool = False, fmt: str | None = None) -> str:
    """Base64 text of the encoded image, as `source_image`/`source_mask` expect."""
    return base64.b64encode(encode_image(image, lossless=lossless, fmt=fmt)).decode("ascii")


def _too_many_bytes(size: int, max_bytes: int) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"the image is {byte_size_text(size)}; the plug-in accepts at most"
        f" {byte_size_text(max_bytes)} per image"
    )


def decode_image(
    data: bytes, *, max_bytes: int = MAX_RESULT_BYTES, max_pixels: int = MAX_RESULT_PIXELS
) -> QImage:
    """A QImage from image file bytes (any format Qt reads); ImageDecodeError otherwise, and
    ImageTooLargeError, from the header alone, for an image over the limits."""
    if len(data) > max_bytes:
        raise _too_many_bytes(len(data), max_bytes)
    array = QByteArray(data)
    buffer = QBuffer(array)
    buffer.open(QIODevice.ReadOnly)
    reader = QImageReader(buffer)
    size = reader.size()  # from the header; invalid when the format has no header to read
    if size.isValid() and size.width() * size.height() > max_pixels:
        side = int(max_pixels**0.5)
        raise ImageTooLargeError(
            f"the image is {size.width()}x{size.height()} pixels; the plug-in accepts at most"
            f" {max_pixels / 1e6:.0f} megapixels ({side}x{side})"
        )
    image = reader.read()
    buffer.close()
    if image.isNull():
        raise ImageDecodeError(
            f"the {len(data)} bytes received are not an image Qt can read (WebP, PNG, JPEG)"
        )
    return image


def decode_base64(
    text: str, *, max_bytes: int = MAX_RESULT_BYTES, max_pixels: int = MAX_RESULT_PIXELS
) -> QImage:
    """A QImage from base64 image text; ImageDecodeError for bad base64 or a corrupt image,
    ImageTooLargeError for one over the limits (see decode_image)."""
    if not isinstance(text, str) or not text:
        raise ImageDecodeError("the image is missing (expected base64 text)")
    if text.startswith(("http://", "https://")):
        raise ImageDecodeError("the horde sent an image URL instead of the image itself")
    # Four base64 characters carry three bytes (less the padding): refuse a huge image
    # before decoding it.
    size = len(text) * 3 // 4 - text[-2:].count("=")
    if size > max_bytes:
        raise _too_many_bytes(size, max_bytes)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ImageDecodeError(f"the image is not valid base64 ({error})") from None
    return decode_image(data, max_bytes=max_bytes, max_pixels=max_pixels)


def apply_mask(image: QImage, mask: bytes) -> QImage:
    """A copy of the image whose alpha is multiplied by the mask (0 = transparent)."""
    width, height = image.width(), image.height()
    if len(mask) != width * height:
        raise ValueError(f"expected {width * height} mask bytes for the image, got {len(mask)}")
    alpha = QImage(mask, width, height, width, QImage.Format_Alpha8).copy()
    result = image.convertToFormat(QImage.Format_ARGB32_Premultiplied)
    painter = QPainter(result)
    painter.setCompositionMode(QPainter.CompositionMode_DestinationIn)
    painter.drawImage(0, 0, alpha)
    painter.end()
    return result.convertToFormat(QImage.Format_ARGB32)


def crop_bytes(data: bytes, outer: Bounds, inner: Bounds, channels: int) -> bytes:
    """The rows of `inner` out of row-major pixels covering `outer` (`inner` lies within it)."""
    if inner == outer:
        return data
    stride, width = outer.width * channels, inner.width * channels
    left = (inner.x - outer.x) * channels
    top = inner.y - outer.y
    return b"".join(
        data[(top + row) * stride + left : (top + row) * stride + left + width]
        for row in range(inner.height)
    )
