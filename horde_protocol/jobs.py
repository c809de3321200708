"""Worker side: `pop`, `submit` and our `progress` extension."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from horde_protocol.base import ReplyBody, RequestBody
from horde_protocol.generation import (
    GenerationMetadata,
    GenerationState,
    Interpolation,
    SourceProcessing,
)
from horde_protocol.limits import MAX_SIDE, MIN_SIDE


class PopRequest(RequestBody):
    """Body of `POST /generate/pop`.

    Defaults are what the public horde applies when a worker leaves a field out (its request
    parser's, which differ from its documented model in places: `nsfw` is on, ControlNet and
    LoRA are off).
    """

    name: str = Field(min_length=1, max_length=100)
    models: list[str] = Field(default_factory=list, max_length=300)
    max_pixels: int = Field(512 * 512, ge=MIN_SIDE * MIN_SIDE, le=MAX_SIDE * MAX_SIDE)
    nsfw: bool = True
    blacklist: list[str] = Field(default_factory=list, max_length=200)
    allow_img2img: bool = True
    allow_painting: bool = True
    allow_unsafe_ipaddr: bool = True
    allow_post_processing: bool = True
    allow_controlnet: bool = False
    allow_sdxl_controlnet: bool = False
    allow_lora: bool = False
    extra_slow_worker: bool = False
    threads: int = Field(1, ge=1, le=50)
    amount: int = Field(1, ge=1, le=20)
    bridge_agent: str = Field("unknown:0:unknown", max_length=1000)
    bridge_version: int | None = None
    priority_usernames: list[str] = Field(default_factory=list, max_length=50)
    require_upfront_kudos: bool = False
    limit_max_steps: bool = False
    # Our extensions: the public horde learns these from its bridge reference instead. A worker
    # that does not send them (any worker written for the public horde) is taken to have both.
    allow_hires_fix: bool = True
    allow_tiling: bool = True
    # Our extension: whether the worker has a safety checker to honour `use_nsfw_censor`. Absent
    # (null) = unknown = assume it has one, as the public horde assumes of all its workers.
    nsfw_censor: bool | None = None
    # Our extension: a pop repeated with the same nonce (its reply was lost) gets the same
    # images back while their leases live, instead of new ones.
    nonce: str | None = Field(None, min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    # Our extensions: exactly which of a kind the worker has. Absent (null) = any, as the public
    # horde assumes of a worker that allows the kind (its workers fetch LoRAs on demand).
    post_processors: list[str] | None = Field(None, max_length=50)
    controlnet_types: list[str] | None = Field(None, max_length=50)
    control_map_types: list[str] | None = Field(
        None, max_length=50, description="control types whose map it computes from an image"
    )
    loras: list[Annotated[str, Field(max_length=255)]] | None = Field(None, max_length=5000)
    textual_inversions: list[Annotated[str, Field(max_length=255)]] | None = Field(
        None, max_length=5000
    )
    # Our extension that no public worker has: the worker renders `params.interpolation`.
    allow_interpolation: bool = False
    # Our extension: with nothing to pop, hold the reply up to this many seconds and answer as
    # soon as a job it could take is queued (the horde caps it; 0 = answer at once, as the
    # public horde always does).
    long_poll_seconds: float = Field(0, ge=0, le=300)


class PopPayload(ReplyBody):
    """`payload` of a pop reply. Every field is optional: with no job, the public horde still
    sends this object, filled with its defaults and without `prompt` or `seed`."""

    prompt: str | None = None
    ddim_steps: int = 30
    seed: str | None = None
    n_iter: int = 1
    sampler_name: str = "k_euler_a"
    cfg_scale: float = 7.5
    width: int = 512
    height: int = 512
    denoising_strength: float | None = None
    hires_fix_denoising_strength: float | None = None
    karras: bool = False
    clip_skip: int = 1
    use_nsfw_censor: bool = False
    post_processing: list[str] = Field(default_factory=list)
    post_processing_order: str | None = None
    facefixer_strength: float | None = None
    hires_fix: bool = False
    tiling: bool = False
    control_type: str | None = None
    image_is_control: bool = False
    return_control_map: bool = False
    transparent: bool = False
    loras: list[dict[str, Any]] | None = None
    tis: list[dict[str, Any]] | None = None
    # Our extension (params.interpolation of the request), only for workers that announced it.
    interpolation: Interpolation | None = None

    @field_validator("seed", mode="before")
    @classmethod
    def _seed_as_text(cls, value: Any) -> Any:
        # Our horde and horde-sdk send the seed as text; older public hordes sent a number.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value


class PopReply(ReplyBody):
    """Reply of `POST /generate/pop`. No job: `id` is None and `ids` empty (`payload` is still an
    object, as the public horde sends it)."""

    id: str | None = None
    ids: list[str] = Field(default_factory=list)
    model: str | None = None
    ttl: int | None = None
    payload: PopPayload | None = None
    source_image: str | None = None
    source_processing: SourceProcessing | str = SourceProcessing.IMG2IMG
    source_mask: str | None = None
    r2_upload: str | None = None
    r2_uploads: list[str] | None = None
    extra_source_images: list[dict[str, Any]] | None = None
    skipped: dict[str, int] = Field(default_factory=dict)
    # Our extension: where the worker may POST progress for this job (absent on the public horde).
    progress_url: str | None = None
    # Our extension: the seconds the horde held this pop at most (present only when the pop
    # asked for `long_poll_seconds`; a horde that leaves it out does not long-poll).
    long_poll_seconds: float | None = None

    @property
    def has_job(self) -> bool:
        return self.id is not None or bool(self.ids)


class SubmitRequest(RequestBody):
    """Body of `POST /generate/submit`."""

    id: str = Field(min_length=1, max_length=100)
    generation: str = Field("", description='base64 WebP/PNG, or "R2" after an upload')
    seed: int = 0
    state: GenerationState = GenerationState.OK
    censored: bool = False
    gen_metadata: list[GenerationMetadata] = Field(default_factory=list, max_length=50)
    # Our extension: a `faulted` answer for a job the worker popped ahead and never started
    # (handed back at a shutdown, or because its ttl could not be honoured). Our horde puts it
    # back without counting a restart of its request; the public horde ignores the field.
    unstarted: bool | None = None

    @model_validator(mode="after")
    def _unstarted_is_a_fault(self) -> SubmitRequest:
        if self.unstarted and self.state != GenerationState.FAULTED:
            raise ValueError(
                f"unstarted is only for a state of 'faulted' (a job handed back unstarted),"
                f" not {self.state.value!r}"
            )
        return self


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
