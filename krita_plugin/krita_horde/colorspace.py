"""Pixels of documents that are not 8-bit RGBA: turned into 8-bit sRGB B,G,R,A bytes for a job,
and results turned back into the document's own pixel format (pure bytes, no Krita, so it
runs in the background threads).

Krita's `pixelData` gives a document's pixels in its own colour space: integer RGB in B,G,R,A
order (8 or 16 bits per channel, little-endian), floating point RGB in R,G,B,A order (16-bit
half or 32-bit float, 0..1), grey as grey,alpha. Floating point documents use a linear
profile by default (Krita's "scRGB"/"…-g10" profiles): their values are encoded with the sRGB
curve on the way to 8 bits and decoded on the way back.

CMYK, Lab, XYZ and YCbCr documents are converted by Krita itself (its colour management, with
the document's profile), not here: their visible pixels are read as an 8-bit sRGB QImage
(`Document.projection`) and their results are written into 8-bit sRGB layers that Krita then
converts into the document's colour space (layer_space.py). Only a "Horde mask" layer is read
from their own bytes (lightness.py). Any other model is refused with the menu path to convert
it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

SUPPORTED_MODELS = ("RGBA", "GRAYA")
# Models whose pixels Krita converts for the plug-in (see the module's docstring).
KRITA_MODELS = ("CMYKA", "LABA", "XYZA", "YCbCrA")
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
    profile: str = ""  # the document's profile: Krita converts results into it

    @classmethod
    def of(cls, model: str, depth: str, profile: str = "") -> PixelFormat:
        known = SUPPORTED_MODELS + KRITA_MODELS
        if model not in known or depth not in SUPPORTED_DEPTHS:
            raise ColorSpaceError(
                f"this document is {model}/{depth}; the horde plug-in works on RGB, grey,"
                " CMYK, Lab, XYZ and YCbCr images (8 or 16-bit integer, 16 or 32-bit float)."
                " Convert it with Image › Convert Image Color Space… (e.g. RGB/Alpha, 8-bit"
                " integer)"
            )
        lowered = profile.lower()
        linear = "g10" in lowered or "linear" in lowered or "scrgb" in lowered
        if depth in ("F16", "F32") and not profile:
            linear = True  # Krita's default float profile is linear
        return cls(model, depth, linear, profile)

    @property
    def krita_converts(self) -> bool:
        """CMYK, Lab, XYZ, YCbCr: Krita converts pixels to and from 8-bit sRGB."""
        return self.model in KRITA_MODELS

    @property
    def channels(self) -> int:
        return {"GRAYA": 2, "CMYKA": 5}.get(self.model, 4)

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
    """Pixels in `fmt` → 8-bit sRGB B,G,R,A (RGB and grey; Krita converts the others)."""
    if fmt.is_native:
        return data
    if fmt.krita_converts:
        raise ValueError(f"{fmt.model} pixels are converted by Krita, not by to_bgra8")
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


def has_alpha(data: bytes, fmt: PixelFormat) -> bool:
    """True when any pixel of `data` (in `fmt`) is not fully transparent, without converting
    it: alpha is each pixel's last channel (bytes.strip runs in C)."""
    size, step = _BYTES[fmt.depth], fmt.pixel_bytes
    return any(data[offset::step].strip(b"\x00") for offset in range(step - size, step))


def from_bgra8(bgra: bytes, fmt: PixelFormat) -> bytes:
    """8-bit sRGB B,G,R,A → pixels in `fmt` (what `setPixelData` of such a document takes).
    For the models Krita converts the bytes stay 8-bit sRGB: they are written into an 8-bit
    sRGB layer that Krita converts afterwards (layer_space.py)."""
    if fmt.is_native or fmt.krita_converts:
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
