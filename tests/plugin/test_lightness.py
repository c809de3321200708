"""A "Horde mask" layer of a CMYK, Lab, XYZ or YCbCr document read as grey: the channel values
below are what the real Krita 5.1.5 stores for white, for black and for sRGB grey 128 in a new
document of each model and depth with its default profile (measured with Node.setColorSpace)."""

from __future__ import annotations

import struct

import pytest

from krita_horde.colorspace import PixelFormat
from krita_horde.lightness import mask_layer_to_bgra8

_PACK = {"U8": "B", "U16": "H", "F16": "e", "F32": "f"}
OPAQUE = {"U8": 255, "U16": 65535, "F16": 1.0, "F32": 1.0}

# model, depth: (white, black, grey 128) without their alpha
MEASURED = {
    ("CMYKA", "U8"): ((0, 0, 0, 0), (50, 0, 209, 253), (6, 0, 2, 152)),
    ("CMYKA", "U16"): ((0, 0, 0, 0), (12858, 6, 53672, 65021), (1431, 2, 560, 39079)),
    ("CMYKA", "F32"): ((0, 0, 0.0015, 0.0015), (19.6, 0.01, 81.9, 99.2), (2.17, 0, 0.85, 59.6)),
    ("LABA", "U8"): ((255, 128, 128), (0, 128, 128), (137, 128, 128)),
    ("LABA", "U16"): ((65535, 32896, 32896), (0, 32896, 32896), (35117, 32896, 32896)),
    ("LABA", "F32"): ((100.0, 0.0, 0.0), (0.0, 0.0, 0.0), (53.58, 0.0, 0.0)),
    ("XYZA", "U8"): ((123, 128, 105), (0, 0, 0), (27, 28, 23)),
    ("XYZA", "U16"): ((31596, 32771, 27028), (0, 0, 0), (6820, 7076, 5836)),
    ("XYZA", "F16"): ((0.4819, 0.5, 0.4124), (0.0, 0.0, 0.0), (0.1041, 0.1079, 0.089)),
    ("XYZA", "F32"): ((0.9642, 1.0, 0.8249), (0.0, 0.0, 0.0), (0.2081, 0.2159, 0.1781)),
    ("YCbCrA", "U8"): ((236, 110, 130), (4, 127, 128), (109, 118, 134)),
    ("YCbCrA", "U16"): ((60652, 28390, 33535), (1023, 32615, 32888), (27937, 30261, 34461)),
    ("YCbCrA", "F32"): ((0.9255, 0.433, 0.512), (0.0156, 0.498, 0.502), (0.4263, 0.462, 0.526)),
}  # fmt: skip


def _pixel(values: tuple[float, ...], depth: str, alpha: float) -> bytes:
    return struct.pack(f"<{len(values) + 1}{_PACK[depth]}", *values, alpha)


@pytest.mark.parametrize(("model", "depth"), list(MEASURED), ids=lambda v: str(v))
def test_white_is_repainted_black_is_kept_and_grey_lies_between(model, depth) -> None:
    white, black, grey = MEASURED[(model, depth)]
    fmt = PixelFormat(model, depth)
    opaque = OPAQUE[depth]
    data = b"".join(_pixel(values, depth, opaque) for values in (white, black, grey))
    data += _pixel(white, depth, 0)  # white paint that is not there
    out = mask_layer_to_bgra8(data, fmt)
    assert len(out) == 16
    assert out[0] >= 250 and out[0:3] == bytes([out[0]] * 3) and out[3] == 255
    assert out[4] <= 5 and out[7] == 255
    assert 25 <= out[8] <= 190 and out[11] == 255  # linear (XYZ) or perceptual lightness
    assert out[15] == 0
