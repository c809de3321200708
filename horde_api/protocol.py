"""The wire protocol: pydantic models of the AI Horde v2 image API subset krita-horde serves.

This module imports nothing but pydantic and the standard library, so that the server, the worker
and the contract tests of the Krita plug-in share one definition of every JSON body.

Compatibility rules (see docs/protocol.md):
- request bodies ignore fields they do not know (real clients send misspellings and fields of
  other protocol versions), reply bodies may gain fields, and clients ignore what they do not know;
- our additions (progress, previews, long-poll) are extra fields or endpoints; the meaning of an
  existing field never changes.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

ANONYMOUS_API_KEY = "0000000000"
DEFAULT_CLIENT_AGENT = "unknown:0:unknown"
MIN_SIDE = 64
MAX_SIDE = 3072
SIDE_MULTIPLE = 64
NEGATIVE_PROMPT_SEPARATOR = "###"

# AI Horde sampler names this horde accepts. The worker maps each one to a diffusers scheduler.
SAMPLER_NAMES: tuple[str, ...] = (
    "k_euler",
    "k_euler_a",
    "k_heun",
    "k_lms",
    "k_dpm_2",
    "k_dpm_2_a",
    "k_dpmpp_2m",
    "k_dpmpp_sde",
    "DDIM",
)


class _Request(BaseModel):
    """Base of every body a client or worker sends: unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _Reply(BaseModel):
    """Base of every body the server sends: readers keep fields they do not know."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class ErrorCode(str, Enum):
    """`rc` values of error replies, as the public horde names them (plus our own few)."""

    BAD_REQUEST = "BadRequest"
    VALIDATION_ERROR = "ValidationError"
    NOT_FOUND = "NotFound"
    INVALID_API_KEY = "InvalidAPIKey"
    WRONG_CREDENTIALS = "WrongCredentials"
    DUPLICATE_GEN = "DuplicateGen"
    ABORTED_GEN = "AbortedGen"
    TOO_MANY_PROMPTS = "TooManyPrompts"
    KUDOS_UPFRONT = "KudosUpfront"
    IMAGE_VALIDATION_FAILED = "ImageValidationFailed"
    SOURCE_MASK_UNNEEDED = "SourceMaskUnneeded"
    FORBIDDEN = "Forbidden"
    ANONYMOUS_FORBIDDEN = "AnonForbidden"
    LOCKED = "Locked"
    RATE_LIMITED = "RateLimited"
    BODY_TOO_LARGE = "BodyTooLarge"
    SERVICE_UNAVAILABLE = "ServiceUnavailable"
    INTERNAL_ERROR = "InternalServerError"


class ErrorReply(_Reply):
    message: str
    rc: str


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


class GenerationParams(_Request):
    """`params` of `POST /generate/async`."""

    width: Side = 512
    height: Side = 512
    steps: int = Field(30, ge=1, le=500)
    cfg_scale: float = Field(7.5, ge=0, le=100)
    sampler_name: str = "k_euler_a"
    seed: str | None = Field(None, max_length=256)
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


class GenerationInput(_Request):
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


class RequestAsyncReply(_Reply):
    id: str
    kudos: float = 0
    message: str | None = None
    warnings: list[dict[str, str]] = Field(default_factory=list)


class DryRunReply(_Reply):
    kudos: float


class RequestStatusCheck(_Reply):
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


class GenerationMetadata(_Request):
    type: str = Field(max_length=64)
    value: str = Field(max_length=64)
    ref: str | None = Field(None, max_length=256)


class Generation(_Reply):
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


class PopRequest(_Request):
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


class PopPayload(_Reply):
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


class PopReply(_Reply):
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


class SubmitRequest(_Request):
    """Body of `POST /generate/submit`."""

    id: str = Field(min_length=1, max_length=100)
    generation: str = Field("", description='base64 WebP/PNG, or "R2" after an upload')
    seed: int = 0
    state: GenerationState = GenerationState.OK
    gen_metadata: list[GenerationMetadata] = Field(default_factory=list, max_length=20)


class SubmitReply(_Reply):
    reward: float


class ProgressRequest(_Request):
    """Body of `POST /generate/progress`, our extension."""

    id: str = Field(min_length=1, max_length=100)
    step: int = Field(ge=0)
    total: int = Field(ge=1)
    preview: str | None = Field(None, description="small base64 WebP")


class ProgressReply(_Reply):
    cancelled: bool


class ModelStatus(_Reply):
    name: str
    count: int
    performance: float = 0
    queued: float = 0
    jobs: float = 0
    eta: int = 0
    type: str = "image"


class WorkerDetails(_Reply):
    name: str
    id: str
    online: bool
    models: list[str] = Field(default_factory=list)
    max_pixels: int = 0
    performance: str = "0 megapixelsteps per second"
    kudos_rewards: float = 0
    uptime: int = 0
    maintenance_mode: bool = False
    trusted: bool = False
    threads: int = 1
    type: str = "image"
    img2img: bool = True
    painting: bool = True
    nsfw: bool = False
    requests_fulfilled: int = 0
    owner: str | None = None


class ModifyWorkerInput(_Request):
    maintenance: bool | None = None
    maintenance_msg: str | None = Field(None, max_length=500)


class ModifyWorkerReply(_Reply):
    maintenance: bool | None = None


class UserDetails(_Reply):
    username: str
    id: int
    kudos: float = 0
    worker_ids: list[str] = Field(default_factory=list)
    concurrency: int = 30
    trusted: bool = False
    worker_count: int = 0


class HeartbeatReply(_Reply):
    message: str = "OK"
    version: str


def split_prompt(prompt: str) -> tuple[str, str]:
    """Split an AI Horde prompt into (prompt, negative prompt) at the first `###`."""
    positive, _, negative = prompt.partition(NEGATIVE_PROMPT_SEPARATOR)
    return positive.strip(), negative.strip()
