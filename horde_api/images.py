"""Checking images that arrive as base64 (sources, masks, results, previews).

Sizes are checked before pixels are decoded (a small file can declare a huge canvas), so a
decompression bomb is refused with a clear 400 instead of eating the server's memory.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass

from PIL import Image

from horde_api.errors import ImageValidationFailed

ACCEPTED_FORMATS = ("WEBP", "PNG", "JPEG")
WEBP_QUALITY = 95


@dataclass(frozen=True)
class CheckedImage:
    raw: bytes
    format: str
    width: int
    height: int
    has_alpha: bool


def decode_base64(text: str, what: str, max_bytes: int) -> bytes:
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    if len(text) > max_bytes * 4 // 3 + 4:
        raise ImageValidationFailed(f"{what} is larger than the allowed {max_bytes} bytes", None)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ImageValidationFailed(
            f"{what} is not valid base64; send a base64-encoded WebP or PNG image"
        ) from None
    if len(raw) > max_bytes:
        raise ImageValidationFailed(f"{what} is larger than the allowed {max_bytes} bytes")
    return raw


def check_image(raw: bytes, what: str, max_pixels: int) -> CheckedImage:
    try:
        with Image.open(io.BytesIO(raw)) as image:
            fmt = image.format or ""
            width, height = image.size
            if fmt not in ACCEPTED_FORMATS:
                raise ImageValidationFailed(
                    f"{what} is a {fmt or 'unknown'} image; allowed: WebP, PNG, JPEG"
                )
            if width * height > max_pixels:
                raise ImageValidationFailed(
                    f"{what} is {width}x{height} = {width * height} pixels;"
                    f" at most {max_pixels} pixels are allowed"
                )
            has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            image.load()
    except ImageValidationFailed:
        raise
    except Exception as exc:  # PIL raises many types for broken data
        raise ImageValidationFailed(
            f"{what} could not be decoded as an image ({type(exc).__name__});"
            " send a base64-encoded WebP or PNG"
        ) from None
    return CheckedImage(raw=raw, format=fmt, width=width, height=height, has_alpha=has_alpha)


def decode_and_check(text: str, what: str, max_bytes: int, max_pixels: int) -> CheckedImage:
    return check_image(decode_base64(text, what, max_bytes), what, max_pixels)


def alpha_has_transparency(raw: bytes) -> bool:
    """True when some pixel is not fully opaque (inpainting without a mask repaints those)."""
    with Image.open(io.BytesIO(raw)) as image:
        alpha = image.convert("RGBA").getchannel("A")
        low, _ = alpha.getextrema()
        return low < 255


def as_webp(image: CheckedImage) -> bytes:
    """Results are stored as WebP; WebP passes through, other formats are converted."""
    if image.format == "WEBP":
        return image.raw
    with Image.open(io.BytesIO(image.raw)) as source:
        converted = source.convert("RGBA" if image.has_alpha else "RGB")
        out = io.BytesIO()
        converted.save(out, format="WEBP", quality=WEBP_QUALITY)
        return out.getvalue()
