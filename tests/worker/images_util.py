"""Building source images and masks for worker tests."""

from __future__ import annotations

import base64
import io

from PIL import Image


def encode(image: Image.Image, fmt: str = "PNG") -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode(data: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    image.load()
    return image


def striped(width: int, height: int) -> Image.Image:
    """A source with structure (so 'unchanged' means something)."""
    image = Image.new("RGB", (width, height))
    for x in range(width):
        for y in range(height):
            image.putpixel((x, y), ((x * 4) % 256, (y * 4) % 256, ((x + y) * 2) % 256))
    return image


def centre_box(width: int, height: int) -> tuple[int, int, int, int]:
    return (width // 4, height // 4, 3 * width // 4, 3 * height // 4)


def box_mask(width: int, height: int) -> Image.Image:
    """White (repaint) in the centre box, black elsewhere."""
    mask = Image.new("L", (width, height), 0)
    mask.paste(255, centre_box(width, height))
    return mask


def with_hole(image: Image.Image) -> Image.Image:
    """The image with a transparent centre box (inpainting by alpha)."""
    rgba = image.convert("RGBA")
    rgba.paste((0, 0, 0, 0), centre_box(*image.size))
    return rgba
