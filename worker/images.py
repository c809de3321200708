"""Images in and out: base64 WebP/PNG sources, masks, WebP results, latent previews."""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

from PIL import Image, ImageChops, UnidentifiedImageError

# Sources are small in practice; this bounds what a hostile or broken job can make us decode.
MAX_SOURCE_PIXELS = 4096 * 4096
ACCEPTED_FORMATS = ("WEBP", "PNG", "JPEG")


class ImageInputError(ValueError):
    """A job's source image or mask is unusable; `field` names which one."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def decode_image(data: str | bytes, field: str) -> Image.Image:
    """Decode a base64 WebP/PNG (or raw bytes, e.g. downloaded) into a loaded PIL image."""
    if isinstance(data, str):
        text = data.strip()
        if text.startswith("data:") and "," in text:
            text = text.split(",", 1)[1]  # a data: URL prefix some clients keep
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ImageInputError(field, "is not valid base64") from None
    else:
        raw = data
    if not raw:
        raise ImageInputError(field, "is empty")
    try:
        with Image.open(io.BytesIO(raw)) as opened:
            if opened.format not in ACCEPTED_FORMATS:
                raise ImageInputError(
                    field, f"format {opened.format} not accepted; send WebP or PNG"
                )
            if opened.width * opened.height > MAX_SOURCE_PIXELS:
                raise ImageInputError(
                    field,
                    f"{opened.width}x{opened.height} is larger than {MAX_SOURCE_PIXELS} pixels",
                )
            opened.load()
            return opened.copy()
    except ImageInputError:
        raise
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError):
        raise ImageInputError(field, "is not a readable WebP or PNG image") from None


def fit(image: Image.Image, width: int, height: int) -> Image.Image:
    """The image at exactly width×height (sources may come at another size)."""
    if image.size == (width, height):
        return image
    return image.resize((width, height), Image.Resampling.LANCZOS)


def has_transparency(image: Image.Image) -> bool:
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        alpha = image.convert("RGBA").getchannel("A")
        return alpha.getextrema()[0] < 255
    return False


def opaque_rgb(image: Image.Image) -> Image.Image:
    """RGB with transparent areas filled grey (neutral for the noise that will repaint them)."""
    if image.mode == "RGB":
        return image
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (127, 127, 127, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def mask_from_alpha(image: Image.Image) -> Image.Image:
    """Inpainting mask from transparency: transparent = white = repaint."""
    return ImageChops.invert(image.convert("RGBA").getchannel("A"))


def mask_to_l(mask: Image.Image) -> Image.Image:
    """A mask as one 8-bit channel, white = repaint. A mask with alpha counts transparent as
    black (keep) so a mask painted on a transparent layer works as drawn."""
    if mask.mode in ("RGBA", "LA"):
        rgba = mask.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(black, rgba).convert("L")
    return mask.convert("L")


def paste_unmasked(generated: Image.Image, original: Image.Image, mask: Image.Image) -> Image.Image:
    """Keep the source outside the mask: the VAE round trip would otherwise alter pixels the
    artist did not ask to repaint."""
    return Image.composite(generated.convert("RGB"), original.convert("RGB"), mask)


def encode_webp(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    # convert() copies the whole image even when it is RGB already: only when needed.
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    rgb.save(buffer, format="WEBP", quality=quality, method=4)
    return buffer.getvalue()


def to_base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# Linear map from SD 1.x latent channels to RGB: a cheap preview without running the VAE.
_LATENT_RGB = (
    (0.298, 0.207, 0.208),
    (0.187, 0.286, 0.173),
    (-0.158, 0.189, 0.264),
    (-0.184, -0.271, -0.473),
)


def latent_preview(latents: Any, max_side: int = 128) -> bytes:
    """A small WebP approximating what the first image of a batch looks like now."""
    import torch

    first = latents[0].detach().to("cpu", torch.float32)
    if first.shape[0] != len(_LATENT_RGB):
        raise ValueError(f"preview needs 4 latent channels, got {first.shape[0]}")
    factors = torch.tensor(_LATENT_RGB, dtype=torch.float32)
    rgb = torch.einsum("chw,ck->hwk", first, factors)
    rgb = ((rgb + 1.0) * 127.5).clamp(0, 255).to(torch.uint8).numpy()
    image = Image.fromarray(rgb, mode="RGB")
    scale = max_side / max(image.size)
    if scale < 1:
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        )
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", quality=60)
    return buffer.getvalue()
