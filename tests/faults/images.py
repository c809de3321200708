"""Images for the fault, load and bad-input tests: small valid ones and every kind of broken one.

Valid images are made with Pillow and depend on a tag (e.g. the job id), so that two different
jobs never produce the same bytes and a duplicated image is visible in a request's results.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import struct
import zlib

from PIL import Image


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _colour(tag: str) -> tuple[int, int, int]:
    digest = hashlib.sha256(tag.encode()).digest()
    return digest[0], digest[1], digest[2]


def image_bytes(width: int = 64, height: int = 64, *, tag: str = "", fmt: str = "WEBP") -> bytes:
    """A valid image whose pixels depend on `tag` (a tag line of pixels keeps it distinct)."""
    image = Image.new("RGB", (width, height), _colour(tag))
    digest = hashlib.sha256(tag.encode()).digest()
    for x in range(min(width, len(digest))):
        image.putpixel((x, 0), (digest[x], 255 - digest[x], digest[x] ^ 0x55))
    out = io.BytesIO()
    if fmt == "WEBP":
        image.save(out, fmt, lossless=True)
    else:
        image.save(out, fmt)
    return out.getvalue()


def webp_b64(width: int = 64, height: int = 64, *, tag: str = "") -> str:
    return b64(image_bytes(width, height, tag=tag, fmt="WEBP"))


def png_b64(width: int = 64, height: int = 64, *, tag: str = "") -> str:
    return b64(image_bytes(width, height, tag=tag, fmt="PNG"))


def mask_png_b64(width: int, height: int) -> str:
    """A greyscale mask: white (repaint) on the right half."""
    mask = Image.new("L", (width, height), 0)
    mask.paste(255, (width // 2, 0, width, height))
    out = io.BytesIO()
    mask.save(out, "PNG")
    return b64(out.getvalue())


def truncated_webp_b64() -> str:
    """A WebP whose RIFF header is right but whose data is cut in the middle."""
    data = image_bytes(256, 256, tag="truncated")
    return b64(data[: len(data) // 2])


def corrupt_png_b64() -> str:
    """A PNG with the right signature and IHDR whose image data is garbage."""
    data = bytearray(image_bytes(64, 64, tag="corrupt", fmt="PNG"))
    idat = data.find(b"IDAT")
    for i in range(idat + 8, min(idat + 60, len(data) - 12)):
        data[i] ^= 0xA5
    return b64(bytes(data))


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return (
        struct.pack(">I", len(body))
        + kind
        + body
        + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    )


@functools.cache
def bomb_png_bytes(side: int = 10_000) -> bytes:
    """A decompression bomb: a greyscale PNG of side×side zeros, ~100 MB decoded, ~100 kB sent."""
    row = b"\x00" + b"\x00" * side  # filter byte + pixels
    compressor = zlib.compressobj(9)
    chunks = [compressor.compress(row) for _ in range(side)]
    chunks.append(compressor.flush())
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", b"".join(chunks))
        + _png_chunk(b"IEND", b"")
    )


def bomb_png_b64(side: int = 10_000) -> str:
    return b64(bomb_png_bytes(side))


def header_only_png_b64(width: int, height: int) -> str:
    """A PNG that claims width×height but carries one row of data (huge dimensions, tiny body)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width + 1))
    return b64(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def not_an_image_b64() -> str:
    return b64(b"This is plain text, not an image. " * 20)


NOT_BASE64 = "this is %%% not base64 at all ###"


def decode_size(data_b64: str) -> tuple[int, int]:
    """Width and height of a base64 image (raises if it is not one)."""
    with Image.open(io.BytesIO(base64.b64decode(data_b64))) as image:
        return image.size
