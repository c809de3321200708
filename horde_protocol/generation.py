"""Client side: `POST /generate/async`, `check` and `status` bodies."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from horde_protocol.base import ReplyBody, RequestBody
from horde_protocol.limits import MAX_SIDE, MIN_SIDE, SIDE_MULTIPLE
from horde_protocol.prompts import NEGATIVE_PROMPT_SEPARATOR
from horde_protocol.samplers import SAMPLER_NAMES


class SourceProcessing(str, Enum):
    IMG2IMG = "img2img"
    INPAINTING = "inpainting"
    OUTPAINTING = "outpainting"
    REMIX = "remix"  # Stable Cascade only on the public horde; refused here (docs/protocol.md)


class PostProcessingOrder(str, Enum):
    FACEFIXERS_FIRST = "facefixers_first"
    UPSCALERS_FIRST = "upscalers_first"
    CUSTOM = "custom"


class ControlType(str, Enum):
    CANNY = "canny"
    HED = "hed"
    DEPTH = "depth"
    NORMAL = "normal"
    OPENPOSE = "openpose"
    SEG = "seg"
    SCRIBBLE = "scribble"
    FAKESCRIBBLES = "fakescribbles"
    HOUGH = "hough"


class GenerationState(str, Enum):
    OK = "ok"
    CENSORED = "censored"
    FAULTED = "faulted"
    CSAM = "csam"


class MetadataType(str, Enum):
    """`gen_metadata[].type` of a submit, in the public horde's vocabulary: what it is about."""

    LORA = "lora"
    TI = "ti"
    CENSORSHIP = "censorship"
    SOURCE_IMAGE = "source_image"
    SOURCE_MASK = "source_mask"
    EXTRA_SOURCE_IMAGES = "extra_source_images"
    BATCH_INDEX = "batch_index"
    INFORMATION = "information"


class MetadataValue(str, Enum):
    """`gen_metadata[].value` of a submit, in the public horde's vocabulary: what happened."""

    DOWNLOAD_FAILED = "download_failed"
    PARSE_FAILED = "parse_failed"
    BASELINE_MISMATCH = "baseline_mismatch"
    CSAM = "csam"
    NSFW = "nsfw"
    SEE_REF = "see_ref"


Side = Annotated[int, Field(ge=MIN_SIDE, le=MAX_SIDE)]
Weight = Annotated[float, Field(ge=-5, le=5)]

# The public horde's post-processor names.
UPSCALERS: tuple[str, ...] = (
    "RealESRGAN_x4plus",
    "RealESRGAN_x2plus",
    "RealESRGAN_x4plus_anime_6B",
    "NMKD_Siax",
    "4x_AnimeSharp",
)
FACE_FIXERS: tuple[str, ...] = ("GFPGAN", "CodeFormers")
# How much each upscaler enlarges the image (the result's size follows it).
UPSCALER_FACTORS: dict[str, int] = {name: 2 if "_x2" in name else 4 for name in UPSCALERS}
POST_PROCESSORS: tuple[str, ...] = (*UPSCALERS, *FACE_FIXERS, "strip_background")
MAX_LORAS = 5
MAX_TEXTUAL_INVERSIONS = 20


class LoraEntry(RequestBody):
    """One LoRA of `params.loras`, as the public horde defines it."""

    name: str = Field(min_length=1, max_length=255)
    model: Weight = 1.0
    clip: Weight = 1.0
    inject_trigger: str | None = Field(None, min_length=1, max_length=30)
    is_version: bool = False


class TextualInversionEntry(RequestBody):
    """One textual inversion of `params.tis`."""

    name: str = Field(min_length=1, max_length=255)
    inject_ti: Literal["prompt", "negprompt"] | None = None
    strength: Weight = 1.0


class Interpolation(RequestBody):
    """**[extension]** `params.interpolation`: a frame between two seeds and/or two prompts.

    The worker starts from the spherical interpolation, at `seed_t`, between the initial noise of
    the image's seed and that of `to_seed` (0 = the image's own noise, 1 = `to_seed`'s), and
    conditions on the linear interpolation, at `prompt_t`, between the text embeddings of the
    request's prompt and of `to_prompt`; the request's negative prompt applies to both. Only
    workers announcing `allow_interpolation` at pop get such images; `to_seed` needs txt2img
    (img2img starts from the source image, not from noise).
    """

    to_seed: str | None = Field(None, min_length=1, max_length=256)
    seed_t: float = Field(0.0, ge=0, le=1)
    to_prompt: str | None = Field(None, min_length=1, max_length=10_000)
    prompt_t: float = Field(0.0, ge=0, le=1)

    @field_validator("to_seed", mode="before")
    @classmethod
    def _seed_as_text(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("to_prompt")
    @classmethod
    def _positive_only(cls, value: str | None) -> str | None:
        if value is not None and NEGATIVE_PROMPT_SEPARATOR in value:
            raise ValueError(
                f"to_prompt is a positive prompt without {NEGATIVE_PROMPT_SEPARATOR!r}: the"
                " request's negative prompt applies to both ends"
            )
        return value

    @model_validator(mode="after")
    def _something_to_interpolate(self) -> Interpolation:
        if self.to_seed is None and self.to_prompt is None:
            raise ValueError("needs to_seed, to_prompt or both")
        return self


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
    hires_fix_denoising_strength: float | None = Field(None, ge=0.01, le=1.0)
    tiling: bool = False
    post_processing: list[str] = Field(default_factory=list, max_length=len(POST_PROCESSORS))
    post_processing_order: PostProcessingOrder = PostProcessingOrder.FACEFIXERS_FIRST
    facefixer_strength: float | None = Field(None, ge=0, le=1)
    control_type: ControlType | None = None
    image_is_control: bool = False
    return_control_map: bool = False
    # Up to 10 here so that 6..10 reach the horde's own check, which answers TooManyLoras.
    loras: list[LoraEntry] = Field(default_factory=list, max_length=10)
    tis: list[TextualInversionEntry] = Field(default_factory=list, max_length=40)
    # Fields the public horde knows that no worker of this horde can honour: kept so that the
    # horde can refuse them by name instead of ignoring them (see generation_checks).
    special: dict[str, Any] | None = None
    extra_texts: list[dict[str, Any]] | None = None
    workflow: str | None = Field(None, max_length=100)
    transparent: bool = False
    interpolation: Interpolation | None = None

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

    @field_validator("post_processing")
    @classmethod
    def _known_post_processors(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in POST_PROCESSORS]
        if unknown:
            raise ValueError(
                f"unknown post-processor {unknown[0]!r}; allowed: {', '.join(POST_PROCESSORS)}"
            )
        if len(set(value)) != len(value):
            raise ValueError("each post-processor may be named once")
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
    extra_source_images: list[dict[str, Any]] | None = None
    nsfw: bool = False
    censor_nsfw: bool = False
    trusted_workers: bool = False
    slow_workers: bool = True
    extra_slow_workers: bool = False
    workers: list[str] = Field(default_factory=list, max_length=20)
    worker_blacklist: bool = False
    r2: bool = True
    shared: bool = False
    replacement_filter: bool = True
    validated_backends: bool = False
    dry_run: bool = False
    disable_batching: bool = False
    allow_downgrade: bool = False
    proxied_account: str | None = Field(None, max_length=255)
    style: str | None = Field(None, max_length=1024)
    webhook: str | None = Field(None, max_length=1024)


class RequestWarning(ReplyBody):
    code: str = Field(min_length=1)
    message: str = Field(min_length=1)


class RequestAsyncReply(ReplyBody):
    id: str
    kudos: float = 0
    message: str | None = None
    warnings: list[RequestWarning] | None = None


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
    ref: str | None = Field(None, max_length=255)


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
