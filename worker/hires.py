"""Hires fix: generate at the model's native size first, then refine at the requested size.

As on the public horde: when both sides of the job are larger than the model's native side
(512 for SD 1.x, 1024 for SDXL), the first pass runs at a size of the same shape whose shorter
side is about the native side (sides rounded down to multiples of 64); its latents are upscaled
to the requested size and denoised again by img2img at `hires_fix_denoising_strength` (0.65
when not given; an img2img job's own `denoising_strength`). Smaller jobs and inpainting run in
one pass, as the public horde does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_HIRES_STRENGTH = 0.65
SIDE_STEP = 64


@dataclass(frozen=True)
class HiresPlan:
    first_width: int
    first_height: int
    strength: float


def native_side(pipeline: Any) -> int:
    """The side the model was trained at: the UNet's latent sample size times the VAE factor."""
    sample = getattr(pipeline.unet.config, "sample_size", 64)
    if isinstance(sample, (list, tuple)):
        sample = min(sample)
    return int(sample) * int(getattr(pipeline, "vae_scale_factor", 8))


def first_pass_size(width: int, height: int, native: int) -> tuple[int, int] | None:
    """The first pass's size, or None when the job is not larger than native on both sides."""
    if width <= native or height <= native:
        return None
    ratio = min(width / native, height / native)
    first = (
        max(SIDE_STEP, int(width / ratio) // SIDE_STEP * SIDE_STEP),
        max(SIDE_STEP, int(height / ratio) // SIDE_STEP * SIDE_STEP),
    )
    return None if first == (width, height) else first


def plan(
    width: int, height: int, native: int, strength: float | None, img2img_strength: float | None
) -> HiresPlan | None:
    size = first_pass_size(width, height, native)
    if size is None:
        return None
    chosen = strength or img2img_strength or DEFAULT_HIRES_STRENGTH
    return HiresPlan(size[0], size[1], chosen)


def upscale_latents(latents: Any, width: int, height: int, vae_factor: int) -> Any:
    from torch.nn import functional

    size = (height // vae_factor, width // vae_factor)
    return functional.interpolate(latents, size=size, mode="bilinear", align_corners=False)
