"""The body of `POST /api/v2/generate/async` for a job, and the choice of its mode.

The mode "auto" follows what the artist gave: a mask (a non-rectangular or feathered selection,
or a painted mask layer) means inpainting, pixels in the area mean img2img, an empty area means
txt2img.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .geometry import Extent
from .settings import NEGATIVE_SEPARATOR, JobSettings

TXT2IMG = "txt2img"
IMG2IMG = "img2img"
INPAINTING = "inpainting"


@dataclass(frozen=True)
class JobSources:
    """What the canvas gives a job, already scaled to the generation size and encoded."""

    image_b64: str | None = None  # the visible pixels of the area (None: nothing drawn there)
    mask_b64: str | None = None  # white = repaint (None: repaint the whole area)


def resolve_mode(requested: str, *, has_content: bool, has_mask: bool) -> str:
    """The mode a job runs in: the requested one, or for "auto" the one the sources call for."""
    if requested != "auto":
        return requested
    if has_mask:
        return INPAINTING
    if has_content:
        return IMG2IMG
    return TXT2IMG


def full_prompt(settings: JobSettings) -> str:
    """AI Horde puts the negative prompt after `###` in the same string."""
    prompt = settings.prompt.strip()
    negative = settings.negative.strip()
    if negative:
        return f"{prompt} {NEGATIVE_SEPARATOR} {negative}"
    return prompt


def build_payload(
    settings: JobSettings, generation: Extent, mode: str, sources: JobSources
) -> dict[str, Any]:
    """The JSON body for `/generate/async`.

    img2img and inpainting need a source image; inpainting sends a mask when there is one
    (without one, the horde repaints where the source is transparent: ours is opaque, so the
    caller passes an all-white mask for "repaint everything").
    """
    if mode not in (TXT2IMG, IMG2IMG, INPAINTING):
        raise ValueError(f"mode must be txt2img, img2img or inpainting, got {mode!r}")
    params: dict[str, Any] = {
        "width": generation.width,
        "height": generation.height,
        "steps": settings.steps,
        "cfg_scale": settings.cfg,
        "sampler_name": settings.sampler,
        "karras": settings.karras,
        "clip_skip": settings.clip_skip,
        "n": settings.n,
    }
    seed = settings.seed.strip()
    if seed:
        params["seed"] = seed
        if settings.n > 1:
            # Without it the horde gives all n images this one seed (the public horde's rule).
            params["seed_variation"] = 1
    body: dict[str, Any] = {
        "prompt": full_prompt(settings),
        "params": params,
        "models": [settings.model] if settings.model else [],
        "nsfw": settings.nsfw,
        "censor_nsfw": not settings.nsfw,
        "trusted_workers": False,
        "slow_workers": True,
        # Images inline as base64: the plug-in does not fetch URLs from third-party storage.
        "r2": False,
        "shared": False,
    }
    if mode == TXT2IMG:
        return body
    if sources.image_b64 is None:
        raise ValueError(f"{mode} needs a source image")
    params["denoising_strength"] = settings.denoise
    body["source_image"] = sources.image_b64
    body["source_processing"] = mode
    if mode == INPAINTING:
        if sources.mask_b64 is None:
            raise ValueError("inpainting needs a mask")
        body["source_mask"] = sources.mask_b64
    return body
