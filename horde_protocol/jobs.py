"""Worker side: `pop`, `submit` and our `progress` extension."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from horde_protocol.base import ReplyBody, RequestBody
from horde_protocol.generation import GenerationMetadata, GenerationState, SourceProcessing
from horde_protocol.limits import MAX_SIDE, MIN_SIDE


class PopRequest(RequestBody):
    """Body of `POST /generate/pop`."""

    name: str = Field(min_length=1, max_length=100)
    models: list[str] = Field(default_factory=list, max_length=300)
    max_pixels: int = Field(512 * 512, ge=MIN_SIDE * MIN_SIDE, le=MAX_SIDE * MAX_SIDE)
    nsfw: bool = False
    blacklist: list[str] = Field(default_factory=list, max_length=200)
    allow_img2img: bool = True
    allow_painting: bool = True
    allow_post_processing: bool = True
    allow_lora: bool = False
    threads: int = Field(1, ge=1, le=10)
    amount: int = Field(1, ge=1, le=20)
    bridge_agent: str = Field("unknown:0:unknown", max_length=1000)
    require_upfront_kudos: bool = False
    limit_max_steps: bool = False


class PopPayload(ReplyBody):
    prompt: str
    ddim_steps: int
    seed: str
    n_iter: int = 1
    sampler_name: str
    cfg_scale: float
    width: int
    height: int
    denoising_strength: float | None = None
    karras: bool = False
    clip_skip: int = 1
    use_nsfw_censor: bool = False
    post_processing: list[str] = Field(default_factory=list)
    hires_fix: bool = False
    tiling: bool = False
    loras: list[dict[str, Any]] = Field(default_factory=list)


class PopReply(ReplyBody):
    """Reply of `POST /generate/pop`; `id` is None when no job fits."""

    id: str | None = None
    ids: list[str] = Field(default_factory=list)
    model: str | None = None
    ttl: int | None = None
    payload: PopPayload | None = None
    source_image: str | None = None
    source_processing: SourceProcessing = SourceProcessing.IMG2IMG
    source_mask: str | None = None
    r2_upload: str | None = None
    skipped: dict[str, int] = Field(default_factory=dict)
    # Our extension: where the worker may POST progress for this job (absent on the public horde).
    progress_url: str | None = None


class SubmitRequest(RequestBody):
    """Body of `POST /generate/submit`."""

    id: str = Field(min_length=1, max_length=100)
    generation: str = Field("", description='base64 WebP/PNG, or "R2" after an upload')
    seed: int = 0
    state: GenerationState = GenerationState.OK
    gen_metadata: list[GenerationMetadata] = Field(default_factory=list, max_length=20)


class SubmitReply(ReplyBody):
    reward: float


class ProgressRequest(RequestBody):
    """Body of `POST /generate/progress`, our extension."""

    id: str = Field(min_length=1, max_length=100)
    step: int = Field(ge=0)
    total: int = Field(ge=1)
    preview: str | None = Field(None, description="small base64 WebP")


class ProgressReply(ReplyBody):
    cancelled: bool
