"""Client side: `POST /generate/async`, `check` and `status` bodies."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from pydantic import Field, field_validator

from horde_protocol.base import ReplyBody, RequestBody
from horde_protocol.limits import MAX_SIDE, MIN_SIDE, SIDE_MULTIPLE
from horde_protocol.samplers import SAMPLER_NAMES


class SourceProcessing(str, Enum):
    IMG2IMG = "img2img"
    INPAINTING = "inpainting"
    OUTPAINTING = "outpainting"


class GenerationState(str, Enum):
    OK = "ok"
    CENSORED = "censored"
    FAULTED = "faulted"
    CSAM = "csam"


Side = Annotated[int, Field(ge=MIN_SIDE, le=MAX_SIDE)]


class GenerationParams(RequestBody):
    """`params` of `POST /generate/async`."""

    width: Side = 512
    height: Side = 512
    steps: int = Field(30, ge=1, le=500)
    cfg_scale: float = Field(7.5, ge=0, le=100)
    sampler_name: str = "k_euler_a"
    seed: str | None = Field(None, max_length=256)
    seed_variation: int | None = Field(None, ge=1, le=1000)
    denoising_strength: float | None = Field(None, ge=0.01, le=1.0)
    karras: bool = False
    clip_skip: int = Field(1, ge=1, le=12)
    n: int = Field(1, ge=1, le=20)
    hires_fix: bool = False
    tiling: bool = False
    post_processing: list[str] = Field(default_factory=list, max_length=10)
    loras: list[dict[str, Any]] = Field(default_factory=list, max_length=5)

    @field_validator("width", "height")
    @classmethod
    def _multiple_of_64(cls, value: int) -> int:
        if value % SIDE_MULTIPLE:
            raise ValueError(
                f"must be a multiple of {SIDE_MULTIPLE} between {MIN_SIDE} and {MAX_SIDE},"
                f" got {value}"
            )
        return value

    @field_validator("seed", mode="before")
    @classmethod
    def _seed_as_text(cls, value: Any) -> Any:
        # The public horde takes the seed as text; clients often send a number.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("sampler_name")
    @classmethod
    def _known_sampler(cls, value: str) -> str:
        if value not in SAMPLER_NAMES:
            raise ValueError(f"unknown sampler {value!r}; allowed: {', '.join(SAMPLER_NAMES)}")
        return value


class GenerationInput(RequestBody):
    """Body of `POST /generate/async`."""

    prompt: str = Field(min_length=1, max_length=10_000)
    params: GenerationParams = Field(default_factory=GenerationParams)
    models: list[str] = Field(default_factory=list, max_length=100)
    source_image: str | None = None
    source_processing: SourceProcessing = SourceProcessing.IMG2IMG
    source_mask: str | None = None
    nsfw: bool = False
    censor_nsfw: bool = False
    trusted_workers: bool = False
    slow_workers: bool = True
    workers: list[str] = Field(default_factory=list, max_length=20)
    worker_blacklist: bool = False
    r2: bool = True
    shared: bool = False
    dry_run: bool = False
    webhook: str | None = Field(None, max_length=1024)


class RequestAsyncReply(ReplyBody):
    id: str
    kudos: float = 0
    message: str | None = None
    warnings: list[dict[str, str]] = Field(default_factory=list)


class DryRunReply(ReplyBody):
    kudos: float


class RequestStatusCheck(ReplyBody):
    """Reply of `GET /generate/check/{id}`."""

    finished: int = 0
    processing: int = 0
    restarted: int = 0
    waiting: int = 0
    done: bool = False
    faulted: bool = False
    wait_time: int = 0
    queue_position: int = 0
    kudos: float = 0
    is_possible: bool = True
    # Our extensions: the public horde sends neither.
    progress: float | None = Field(None, ge=0, le=1, description="0..1 over all images")
    cancelled: bool | None = None
    preview_available: bool | None = None


class GenerationMetadata(RequestBody):
    type: str = Field(max_length=64)
    value: str = Field(max_length=64)
    ref: str | None = Field(None, max_length=256)


class Generation(ReplyBody):
    img: str
    seed: str
    id: str
    worker_id: str
    worker_name: str
    model: str
    censored: bool = False
    state: GenerationState = GenerationState.OK
    gen_metadata: list[dict[str, Any]] = Field(default_factory=list)


class RequestStatus(RequestStatusCheck):
    """Reply of `GET` and `DELETE /generate/status/{id}`."""

    generations: list[Generation] = Field(default_factory=list)
    shared: bool = False
