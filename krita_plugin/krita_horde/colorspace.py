"""Pixels of documents that are not 8-bit RGBA: turned into 8-bit sRGB B,G,R,A bytes for a job,
and results turned back into the document's own pixel format (pure bytes, no Krita, so it
runs in the background threads).

Krita's `pixelData` gives a document's pixels in its own colour space: integer RGB in B,G,R,A
order (8 or 16 bits per channel, little-endian), floating point RGB in R,G,B,A order (16-bit
half or 32-bit float, 0..1), grey as grey,alpha. Floating point documents use a linear
profile by default (Krita's "scRGB"/"…-g10" profiles): their values are encoded with the sRGB
curve on the way to 8 bits and decoded on the way back. Other models (CMYK, Lab, XYZ, YCbCr)
are refused with the menu path to convert them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

SUPPORTED_MODELS = ("RGBA", "GRAYA")
SUPPORTED_DEPTHS = ("U8", "U16", "F16", "F32")
_BYTES = {"U8": 1, "U16": 2, "F16": 2, "F32": 4}
_STRUCT = {"F16": "e", "F32": "f"}


class ColorSpaceError(ValueError):
    """A colour model the plug-in cannot convert; the message says what to do."""


@dataclass(frozen=True)
class PixelFormat:
    model: str = "RGBA"
    depth: str = "U8"
    linear: bool = False  # a linear (gamma 1.0) profile

    @classmethod
    def of(cls, model: str, depth: str, profile: str = "") -> PixelFormat:
        if model not in SUPPORTED_MODELS or depth not in SUPPORTED_DEPTHS:
            raise ColorSpaceError(
                f"this document is {model}/{depth}; the horde plug-in works on RGB or grey"
                " images (8 or 16-bit integer, 16 or 32-bit float). Convert it with"
                " Image › Convert Image Color Space… (e.g. RGB/Alpha, 8-bit integer)"
            )
        lowered = profile.lower()
        linear = "g10" in lowered or "linear" in lowered or "scrgb" in lowered
        if depth in ("F16", "F32") and not profile:
            linear = True  # Krita's default float profile is linear
        return cls(model, depth, linear)

    @property
    def channels(self) -> int:
        return 4 if self.model == "RGBA" else 2

    @property
    def pixel_bytes(self) -> int:
        return self.channels * _BYTES[self.depth]

    @property
    def is_native(self) -> bool:
        """8-bit RGBA: the bytes are used as they are."""
        return (self.model, self.depth) == ("RGBA", "U8")


NATIVE = PixelFormat()


def _encode_srgb(value: float) -> float:
    if value <= 0.0031308:
        return 12.92 * value
    return 1.055 * value ** (1 / 2.4) - 0.055


def _decode_srgb(value: float) -> float:
    if value <= 0.04045:
        return value / 12.92
    return ((value + 0.055) / 1.055) ** 2.4


def _to_byte(value: float, linear: bool) -> int:
    value = 0.0 if value != value else min(1.0, max(0.0, value))  # NaN, out of range
    if linear:
        value = _encode_srgb(value)
    return int(value * 255 + 0.5)


def to_bgra8(data: bytes, fmt: PixelFormat) -> bytes:
    """Pixels in `fmt` → 8-bit sRGB B,G,R,A."""
    if fmt.is_native:
        return data
    if fmt.depth == "U8":  # grey, alpha
        grey, alpha = data[0::2], data[1::2]
        return _interleave(grey, grey, grey, alpha)
    if fmt.depth == "U16":
        high = data[1::2]  # the high byte of each little-endian channel
        if fmt.model == "RGBA":
            return high
        return _interleave(high[0::2], high[0::2], high[0::2], high[1::2])
    values = struct.unpack(f"<{len(data) // _BYTES[fmt.depth]}{_STRUCT[fmt.depth]}", data)
    if fmt.model == "RGBA":
        red, green, blue, alpha = values[0::4], values[1::4], values[2::4], values[3::4]
    else:
        red = green = blue = values[0::2]
        alpha = values[1::2]
    colour = [bytes(_to_byte(v, fmt.linear) for v in channel) for channel in (blue, green, red)]
    opacity = bytes(_to_byte(v, False) for v in alpha)
    return _interleave(*colour, opacity)


def from_bgra8(bgra: bytes, fmt: PixelFormat) -> bytes:
    """8-bit sRGB B,G,R,A → pixels in `fmt` (what `setPixelData` of such a document takes)."""
    if fmt.is_native:
        return bgra
    blue, green, red, alpha = bgra[0::4], bgra[1::4], bgra[2::4], bgra[3::4]
    if fmt.model == "GRAYA":
        if fmt.depth in ("F16", "F32") and fmt.linear:
            # Luminance in linear light, kept exact for a float document.
            return _pack(
                [
                    value
                    for luminance, opacity in zip(_luminance(red, green, blue), alpha, strict=True)
                    for value in (luminance, opacity / 255)
                ],
                fmt,
            )
        grey = bytes(_to_byte(value, True) for value in _luminance(red, green, blue))
        channels: tuple[bytes, ...] = (grey, alpha)
    elif fmt.depth in ("U8", "U16"):
        channels = (blue, green, red, alpha)
    else:
        channels = (red, green, blue, alpha)
    if fmt.depth == "U8":
        return _interleave(*channels)
    if fmt.depth == "U16":
        # v * 257 spreads 0..255 over 0..65535: the low byte repeats the high one.
        widened = _interleave(*channels)
        return _interleave(widened, widened)
    colour = [_decode_srgb(i / 255) if fmt.linear else i / 255 for i in range(256)]
    straight = [i / 255 for i in range(256)]
    tables = [colour] * (len(channels) - 1) + [straight]
    values = [
        tables[index % len(channels)][byte] for index, byte in enumerate(_interleave(*channels))
    ]
    return _pack(values, fmt)


def _pack(values: list[float], fmt: PixelFormat) -> bytes:
    return struct.pack(f"<{len(values)}{_STRUCT[fmt.depth]}", *values)


_LINEAR = [_decode_srgb(i / 255) for i in range(256)]


def _luminance(red: bytes, green: bytes, blue: bytes) -> list[float]:
    """Rec. 709 luminance in linear light of sRGB bytes: how a colour looks in grey."""
    lin = _LINEAR
    return [
        0.2126 * lin[r] + 0.7152 * lin[g] + 0.0722 * lin[b]
        for r, g, b in zip(red, green, blue, strict=True)
    ]


def _interleave(*channels: bytes) -> bytes:
    out = bytearray(len(channels[0]) * len(channels))
    for index, channel in enumerate(channels):
        out[index :: len(channels)] = channel
    return bytes(out)
