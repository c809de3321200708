"""Our `interpolation` extension: a frame between two seeds and/or between two prompts.

Noise is interpolated spherically: two independent Gaussian noises are nearly orthogonal, and
their straight average has a smaller norm than either (at t = 0.5 about 0.71 of it), which the
sampler would render as a washed-out, blurry frame; the spherical path keeps the norm. Text
embeddings are interpolated linearly, as they are no Gaussian sample.

At t = 0 both give exactly the plain job's inputs (same noise from the same generator, same
embeddings), so a walk starts on the image the seed alone would give.
"""

from __future__ import annotations

from typing import Any

from horde_protocol import Interpolation
from horde_protocol.seeds import seed_to_int

# Below this angle between the two noises, slerp is numerically a lerp.
_PARALLEL_DOT = 0.9995


def slerp(a: Any, b: Any, t: float) -> Any:
    """Spherical interpolation between two tensors of one shape (t = 0 gives `a` exactly)."""
    import torch

    if t <= 0:
        return a
    if t >= 1:
        return b
    a32, b32 = a.double().flatten(), b.double().flatten()
    dot = torch.dot(a32 / a32.norm(), b32 / b32.norm()).clamp(-1.0, 1.0)
    if abs(float(dot)) > _PARALLEL_DOT:
        mixed = (1 - t) * a32 + t * b32
    else:
        theta = torch.arccos(dot)
        mixed = (torch.sin((1 - t) * theta) * a32 + torch.sin(t * theta) * b32) / torch.sin(theta)
    return mixed.reshape(a.shape).to(a.dtype)


def _noise(pipeline: Any, width: int, height: int, seed: int) -> tuple[Any, Any]:
    """(initial noise, its generator after drawing it), exactly as the pipeline draws them."""
    import torch

    generator = torch.Generator(device="cpu").manual_seed(seed)
    scale = pipeline.vae_scale_factor
    shape = (1, pipeline.unet.config.in_channels, height // scale, width // scale)
    noise = torch.randn(shape, generator=generator, device="cpu", dtype=pipeline.unet.dtype)
    return noise, generator


def noise_arguments(
    pipeline: Any, interpolation: Interpolation, width: int, height: int, seed: int
) -> dict[str, Any]:
    """`latents` between the noises of `seed` and `to_seed`, and the generator to go on with."""
    if interpolation.to_seed is None:
        return {}
    own, generator = _noise(pipeline, width, height, seed)
    other, _ = _noise(pipeline, width, height, seed_to_int(interpolation.to_seed))
    return {"latents": slerp(own, other, interpolation.seed_t), "generator": generator}


def prompt_arguments(
    pipeline: Any,
    interpolation: Interpolation,
    prompt: str,
    negative_prompt: str | None,
    guidance_scale: float,
    clip_skip: int | None,
) -> dict[str, Any]:
    """Prompt embeddings between `prompt` and `to_prompt`, in place of the prompt texts."""
    if interpolation.to_prompt is None:
        return {}
    encode: dict[str, Any] = {
        "device": pipeline._execution_device,
        "num_images_per_prompt": 1,
        "do_classifier_free_guidance": guidance_scale > 1,
        "negative_prompt": negative_prompt,
        "clip_skip": clip_skip,
    }
    # SD 1/2 return (embeds, negative); SDXL adds (pooled, negative pooled).
    start = pipeline.encode_prompt(prompt=prompt, **encode)
    end = pipeline.encode_prompt(prompt=interpolation.to_prompt, **encode)
    t = interpolation.prompt_t
    arguments: dict[str, Any] = {
        "prompt": None,
        "negative_prompt": None,
        "prompt_embeds": _lerp(start[0], end[0], t),
        "negative_prompt_embeds": start[1],
    }
    if len(start) == 4:
        arguments["pooled_prompt_embeds"] = _lerp(start[2], end[2], t)
        arguments["negative_pooled_prompt_embeds"] = start[3]
    return arguments


def _lerp(a: Any, b: Any, t: float) -> Any:
    return a if t <= 0 else a + (b - a) * t
