"""Image files in and out: reading the user's images, snapping sizes, encoding sources."""

from __future__ import annotations

import base64
import io
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from horde_client.errors import UsageError
from horde_protocol import MAX_SIDE, MIN_SIDE, SIDE_MULTIPLE


def snap_side(side: float) -> int:
    """The nearest multiple of 64 within the protocol's bounds."""
    snapped = round(side / SIDE_MULTIPLE) * SIDE_MULTIPLE
    return max(MIN_SIDE, min(MAX_SIDE, snapped))


def snapped_size(width: int, height: int, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """A size of multiples of 64 close to (width, height), keeping the aspect ratio, with no
    side above `max_side`."""
    scale = min(1.0, max_side / max(width, height))
    return snap_side(width * scale), snap_side(height * scale)


def open_image(path: Path, what: str = "image") -> Image.Image:
    """Open a PNG/WebP/JPEG file fully, or say clearly why not."""
    try:
        image = Image.open(path)
        image.load()
    except FileNotFoundError:
        raise UsageError(f"{what} {path}: no such file") from None
    except (UnidentifiedImageError, OSError) as error:
        raise UsageError(f"{what} {path}: not an image Pillow can read ({error})") from None
    return image


def as_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "P"):
        # Transparent pixels become white, as an artist's canvas behind them would be.
        background = Image.new("RGB", image.size, (255, 255, 255))
        rgba = image.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def png_bytes(image: Image.Image) -> bytes:
    """Lossless: a chain of img2img steps must not lose quality at every hand-over."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def decode_generation(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return as_rgb(image)


def decode_base64(text: str) -> bytes:
    return base64.b64decode(text.split(",", 1)[1] if text.startswith("data:") else text)


def prepare_source(path: Path, max_side: int = MAX_SIDE) -> tuple[Image.Image, bytes]:
    """The user's image as an img2img source: RGB, resized to multiples of 64, as PNG."""
    image = as_rgb(open_image(path))
    size = snapped_size(*image.size, max_side=max_side)
    if size != image.size:
        image = image.resize(size, Image.Resampling.LANCZOS)
    return image, png_bytes(image)


def prepare_mask(path: Path, size: tuple[int, int]) -> bytes:
    """An inpainting mask (white = repaint) at the source's size, as a greyscale PNG."""
    mask = as_rgb(open_image(path, "mask")).convert("L")
    if mask.size != size:
        mask = mask.resize(size, Image.Resampling.NEAREST)
    return png_bytes(mask)
