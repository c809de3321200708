"""A popped job, checked and decoded before any heavy work starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from PIL import Image

from horde_protocol import Interpolation, PopReply, SourceProcessing, split_prompt
from horde_protocol.seeds import fold, seed_to_int
from horde_worker.images import (
    ImageInputError,
    decode_image,
    fit,
    has_transparency,
    mask_from_alpha,
    mask_to_l,
    opaque_rgb,
)
from horde_worker.samplers import SAMPLERS

DEFAULT_IMG2IMG_STRENGTH = 0.75  # what the public horde uses when a request gives none


class Mode(str, Enum):
    TXT2IMG = "txt2img"
    IMG2IMG = "img2img"
    INPAINTING = "inpainting"


class JobRejected(ValueError):
    """The job cannot be generated here; becomes a `faulted` submit with this reason.

    `meta_type`/`meta_value` follow the public horde's gen_metadata vocabulary.
    """

    def __init__(self, reason: str, meta_type: str = "information", meta_value: str = "see_ref"):
        super().__init__(reason)
        self.reason = reason
        self.meta_type = meta_type
        self.meta_value = meta_value


@dataclass
class Job:
    ids: list[str]
    model: str | None
    mode: Mode
    prompt: str
    negative_prompt: str
    width: int
    height: int
    steps: int
    cfg_scale: float
    sampler_name: str
    karras: bool
    seeds: list[int]
    strength: float
    clip_skip: int
    source_image: Image.Image | None = None
    mask: Image.Image | None = None
    r2_uploads: list[str | None] = field(default_factory=list)
    progress_url: str | None = None
    ttl: int | None = None
    interpolation: Interpolation | None = None  # our extension (worker/interpolation.py)

    @property
    def id(self) -> str:
        return self.ids[0]

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"


@dataclass(frozen=True)
class Capabilities:
    """What this worker told the horde it serves; a job outside it is refused, not attempted."""

    models: tuple[str, ...]
    max_pixels: int
    allow_img2img: bool
    allow_painting: bool


def job_from_pop(
    reply: PopReply,
    capabilities: Capabilities,
    *,
    source_bytes: bytes | None = None,
    mask_bytes: bytes | None = None,
    fallback_seed: int = 0,
) -> Job:
    """Check and decode a pop reply. Raises JobRejected with a clear reason.

    `source_bytes`/`mask_bytes` replace `source_image`/`source_mask` when those were URLs the
    caller downloaded (the public horde hands sources out as links).
    """
    if not reply.has_job or reply.payload is None:
        raise ValueError("pop reply carries no job")
    payload = reply.payload
    ids = list(reply.ids) or [str(reply.id)]
    if reply.model is not None and reply.model not in capabilities.models:
        served = ", ".join(capabilities.models)
        raise JobRejected(f"model {reply.model!r} is not served here (serving: {served})")
    if payload.sampler_name not in SAMPLERS:
        raise JobRejected(f"unknown sampler {payload.sampler_name!r}; known: {', '.join(SAMPLERS)}")
    for side_name, side in (("width", payload.width), ("height", payload.height)):
        if side < 64 or side % 8:
            raise JobRejected(f"{side_name} {side} must be at least 64 and a multiple of 8")
    if payload.width * payload.height > capabilities.max_pixels:
        raise JobRejected(
            f"{payload.width}x{payload.height} exceeds this worker's max_pixels"
            f" {capabilities.max_pixels}"
        )
    if not 1 <= payload.ddim_steps <= 500:
        raise JobRejected(f"steps {payload.ddim_steps} outside 1..500")
    if payload.prompt is None:
        raise JobRejected("the job has no prompt")
    # What this worker cannot do is refused, never silently left out of the image.
    unsupported = {
        f"post-processing {payload.post_processing}": bool(payload.post_processing),
        "LoRAs": bool(payload.loras),
        "textual inversions": bool(payload.tis),
        "hires fix": payload.hires_fix,
        "tiling": payload.tiling,
        f"ControlNet {payload.control_type}": payload.control_type is not None,
        "transparency": payload.transparent,
    }
    for feature, asked in unsupported.items():
        if asked:
            raise JobRejected(f"{feature} is not supported by this worker")

    mode = Mode.TXT2IMG
    source: Image.Image | None = None
    mask: Image.Image | None = None
    if reply.source_image:
        painting = reply.source_processing in (
            SourceProcessing.INPAINTING,
            SourceProcessing.OUTPAINTING,
        )
        mode = Mode.INPAINTING if painting else Mode.IMG2IMG
        if mode is Mode.IMG2IMG and not capabilities.allow_img2img:
            raise JobRejected("img2img is disabled on this worker")
        if mode is Mode.INPAINTING and not capabilities.allow_painting:
            raise JobRejected("inpainting is disabled on this worker")
        source = _decode(source_bytes or reply.source_image, "source_image")
        source = fit(source, payload.width, payload.height)
        if mode is Mode.INPAINTING:
            if reply.source_mask:
                mask = mask_to_l(_decode(mask_bytes or reply.source_mask, "source_mask"))
                mask = fit(mask, payload.width, payload.height)
            elif has_transparency(source):
                mask = mask_from_alpha(source)
            else:
                raise JobRejected(
                    "inpainting needs a source_mask or transparent pixels in source_image;"
                    " got neither",
                    "source_mask",
                    "parse_failed",
                )
        source = opaque_rgb(source)

    interpolation = payload.interpolation
    if interpolation is not None and interpolation.to_seed is not None and mode is not Mode.TXT2IMG:
        raise JobRejected("interpolation.to_seed needs txt2img: img2img starts from its source")

    positive, negative = split_prompt(payload.prompt)
    base_seed = fallback_seed if payload.seed in (None, "") else seed_to_int(payload.seed)
    if mode is Mode.TXT2IMG:
        strength = 1.0
    elif payload.denoising_strength is not None:
        strength = payload.denoising_strength
    else:
        strength = 1.0 if mode is Mode.INPAINTING else DEFAULT_IMG2IMG_STRENGTH
    r2_uploads = _r2_targets(reply, len(ids))
    return Job(
        ids=ids,
        model=reply.model,
        mode=mode,
        prompt=positive,
        negative_prompt=negative,
        width=payload.width,
        height=payload.height,
        steps=payload.ddim_steps,
        cfg_scale=payload.cfg_scale,
        sampler_name=payload.sampler_name,
        karras=payload.karras,
        # One image per id; consecutive seeds as the public horde's workers do for batches.
        seeds=[fold(base_seed + index) for index in range(len(ids))],
        strength=strength,
        clip_skip=payload.clip_skip,
        source_image=source,
        mask=mask,
        r2_uploads=r2_uploads,
        progress_url=reply.progress_url,
        ttl=reply.ttl,
        interpolation=interpolation,
    )


def _decode(data: str | bytes, field_name: str) -> Image.Image:
    try:
        return decode_image(data, field_name)
    except ImageInputError as error:
        raise JobRejected(str(error), error.field, "parse_failed") from None


def _r2_targets(reply: PopReply, count: int) -> list[str | None]:
    # The public horde sends `r2_uploads` (one per id) for batches and `r2_upload` for one.
    many = reply.r2_uploads
    if many is not None and len(many) == count:
        return [url or None for url in many]
    return [reply.r2_upload] + [None] * (count - 1)
