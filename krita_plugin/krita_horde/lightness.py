"""The "Horde mask" layer of a CMYK, Lab, XYZ or YCbCr document, read from its own bytes: each
pixel's lightness (white = repaint, black = keep) as grey 8-bit B,G,R,A, with its opacity.

A mask only needs "how white": the lightness channel of each model is scaled between the
values Krita 5.1.5 itself stores for white and for black in a new document of that model and
depth with its default profile (measured in the real Krita; the tests keep those figures).
The document's visible pixels are not read this way: Krita converts them (colorspace.py).
"""

from __future__ import annotations

import struct

from .colorspace import PixelFormat

_STRUCT = {"U8": "B", "U16": "H", "F16": "e", "F32": "f"}
_SIZE = {"U8": 1, "U16": 2, "F16": 2, "F32": 4}
_OPAQUE = {"U8": 255.0, "U16": 65535.0, "F16": 1.0, "F32": 1.0}

# model -> depth -> (channel index, its value for black, its value for white)
_LIGHTNESS: dict[str, dict[str, tuple[int, float, float]]] = {
    "LABA": {d: (0, 0.0, w) for d, w in (("U8", 255), ("U16", 65535), ("F16", 100), ("F32", 100))},
    # Krita's integer and half-float XYZ keep white's Y at half the range.
    "XYZA": {d: (1, 0.0, w) for d, w in (("U8", 128), ("U16", 32768), ("F16", 0.5), ("F32", 1.0))},
    # The default YCbCr profile's Y does not span the whole range.
    "YCbCrA": {
        "U8": (0, 4, 236),
        "U16": (0, 1023, 60652),
        "F16": (0, 0.0156, 0.9255),
        "F32": (0, 0.0156, 0.9255),
    },
}
_CMYK_INK = {"U8": 255.0, "U16": 65535.0, "F16": 100.0, "F32": 100.0}  # full ink


def mask_layer_to_bgra8(data: bytes, fmt: PixelFormat) -> bytes:
    """Grey B,G,R,A bytes of a mask layer's pixels in one of the models Krita converts."""
    channels, depth = fmt.channels, fmt.depth
    count = len(data) // _SIZE[depth]
    values = struct.unpack(f"<{count}{_STRUCT[depth]}", data[: count * _SIZE[depth]])
    opaque = _OPAQUE[depth]
    grey = bytearray()
    alpha = bytearray()
    for start in range(0, count - channels + 1, channels):
        pixel = values[start : start + channels]
        grey.append(_byte(_lightness(pixel, fmt.model, depth)))
        alpha.append(_byte(pixel[-1] / opaque))
    out = bytearray(len(grey) * 4)
    for index in range(3):
        out[index::4] = grey
    out[3::4] = alpha
    return bytes(out)


def _lightness(pixel: tuple[float, ...], model: str, depth: str) -> float:
    if model == "CMYKA":
        ink = _CMYK_INK[depth]
        cyan, magenta, yellow, key = (value / ink for value in pixel[:4])
        return (1 - key) * (1 - max(cyan, magenta, yellow))
    index, black, white = _LIGHTNESS[model][depth]
    return (pixel[index] - black) / (white - black)


def _byte(value: float) -> int:
    value = 0.0 if value != value else min(1.0, max(0.0, value))  # NaN, out of range
    return int(value * 255 + 0.5)
