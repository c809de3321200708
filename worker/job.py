"""A popped job, checked and decoded before any heavy work starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from PIL import Image

from horde_protocol import (
    Interpolation,
    MetadataType,
    MetadataValue,
    PopPayload,
    PopReply,
    SourceProcessing,
    split_prompt,
)
from horde_protocol.seeds import fold, seed_to_int
from horde_worker.adapters import LoraRequest, TiRequest, name_key
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

    def __init__(
        self,
        reason: str,
        meta_type: str = MetadataType.INFORMATION,
        meta_value: str = MetadataValue.SEE_REF,
    ):
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
    # The public horde's features (each checked against Capabilities before generation).
    post_processing: list[str] = field(default_factory=list)
    post_processing_order: str | None = None
    hires_fix: bool = False
    hires_fix_strength: float | None = None
    tiling: bool = False
    control_type: str | None = None
    image_is_control: bool = False
    return_control_map: bool = False
    loras: list[LoraRequest] = field(default_factory=list)
    tis: list[TiRequest] = field(default_factory=list)
    interpolation: Interpolation | None = None  # our extension (worker/interpolation.py)
    # use_nsfw_censor: run the safety checker on its images (worker/safety.py).
    censor_nsfw: bool = False

    @property
    def changes_model(self) -> bool:
        """Whether the job patches the shared modules (it then needs the model alone)."""
        return bool(self.loras or self.tis or self.tiling)

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
    post_processors: tuple[str, ...] = ()
    controlnet_types: tuple[str, ...] = ()
    control_map_types: tuple[str, ...] = ()
    loras: tuple[str, ...] = ()  # lower-case names (worker/adapters.py name_key)
    tis: tuple[str, ...] = ()
    hires_fix: bool = True
    tiling: bool = True
    nsfw_censor: bool = False  # a safety checker is loaded


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
    _check_features(payload, capabilities)
    loras = [_lora(entry) for entry in payload.loras or []]
    tis = [_ti(entry) for entry in payload.tis or []]
    for kind, names, served in (
        ("LoRA", [lora.name for lora in loras], capabilities.loras),
        ("textual inversion", [ti.name for ti in tis], capabilities.tis),
    ):
        missing = [name for name in names if name_key(name) not in served]
        if missing:
            raise JobRejected(f"{kind} {missing[0]!r} is not available on this worker")

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
                    MetadataValue.PARSE_FAILED,
                )
        source = opaque_rgb(source)
    if payload.control_type is not None and mode is not Mode.IMG2IMG:
        raise JobRejected(
            "ControlNet needs a source_image (the control map, or the image to derive it"
            " from) and cannot be combined with inpainting"
        )

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
        post_processing=list(payload.post_processing),
        post_processing_order=payload.post_processing_order,
        # The public horde does not hires-fix inpainting (the size is the source's).
        hires_fix=payload.hires_fix and mode is not Mode.INPAINTING,
        hires_fix_strength=payload.hires_fix_denoising_strength,
        tiling=payload.tiling,
        control_type=payload.control_type,
        image_is_control=payload.image_is_control,
        return_control_map=payload.return_control_map and payload.control_type is not None,
        loras=loras,
        tis=tis,
        interpolation=interpolation,
        censor_nsfw=payload.use_nsfw_censor,
    )


def _check_features(payload: PopPayload, capabilities: Capabilities) -> None:
    if payload.use_nsfw_censor and not capabilities.nsfw_censor:
        # A horde that did not read our `nsfw_censor: false` (an older one) sent it anyway.
        raise JobRejected(
            "the job asks for the NSFW censor (use_nsfw_censor) but this worker has no safety"
            " checker; it does not generate images it cannot censor"
        )
    for name in payload.post_processing:
        if name not in capabilities.post_processors:
            served = ", ".join(capabilities.post_processors) or "none"
            raise JobRejected(f"post-processor {name} is not served here (serving: {served})")
    control = payload.control_type
    if control is not None:
        if control not in capabilities.controlnet_types:
            served = ", ".join(capabilities.controlnet_types) or "none"
            raise JobRejected(f"ControlNet {control} is not served here (serving: {served})")
        if not payload.image_is_control and control not in capabilities.control_map_types:
            raise JobRejected(
                f"this worker cannot compute a {control} map from an image; send the map with"
                " image_is_control"
            )
    refused = {
        "hires fix": payload.hires_fix and not capabilities.hires_fix,
        "tiling": payload.tiling and not capabilities.tiling,
        "transparency": payload.transparent,
    }
    for feature, asked in refused.items():
        if asked:
            raise JobRejected(f"{feature} is not supported by this worker")


def _number(entry: dict[str, Any], key: str, default: float) -> float:
    value = entry.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise JobRejected(f"{key} {value!r} of {entry.get('name')!r} is not a number")
    return float(value)


def _named(entry: Any, kind: str) -> str:
    name = entry.get("name") if isinstance(entry, dict) else None
    if name is None or str(name).strip() == "":
        raise JobRejected(f"a {kind} entry has no name")
    return str(name)


def _lora(entry: Any) -> LoraRequest:
    name = _named(entry, "LoRA")
    trigger = entry.get("inject_trigger")
    return LoraRequest(
        name=name,
        model=_number(entry, "model", 1.0),
        clip=_number(entry, "clip", 1.0),
        inject_trigger=str(trigger) if trigger else None,
    )


def _ti(entry: Any) -> TiRequest:
    name = _named(entry, "textual inversion")
    inject = entry.get("inject_ti")
    if inject not in (None, "prompt", "negprompt"):
        raise JobRejected(f"inject_ti {inject!r} of {name!r}: allowed are prompt and negprompt")
    return TiRequest(name=name, strength=_number(entry, "strength", 1.0), inject_ti=inject)


def _decode(data: str | bytes, field_name: str) -> Image.Image:
    try:
        return decode_image(data, field_name)
    except ImageInputError as error:
        raise JobRejected(str(error), error.field, MetadataValue.PARSE_FAILED) from None


def _r2_targets(reply: PopReply, count: int) -> list[str | None]:
    # The public horde sends `r2_uploads` (one per id) for batches and `r2_upload` for one.
    many = reply.r2_uploads
    if many is not None and len(many) == count:
        return [url or None for url in many]
    return [reply.r2_upload] + [None] * (count - 1)
