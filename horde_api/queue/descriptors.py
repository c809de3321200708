"""Which rq queue an image waits in: one queue per (priority, size class, kind, flags, models).

A pop looks only at the heads of the queues whose descriptor the worker can serve, so its cost
depends on how many distinct kinds of work are waiting, never on how many images wait.

Descriptor text: `<tier>.<band>|<min_pixels>|<kind>|<flags>|<models>`. The tier and the kudos
band make the request's priority (`Priority`; a lower one is served first). `min_pixels` is the
exclusive lower pixel bound of the size class (a worker with `max_pixels` above it may find
images it can take there), `kind` is t (txt2img), i (img2img) or p (inpainting/outpainting),
`flags` is the NSFW digit (0/1) followed by the letters of what the images need of a worker
(`Need`, sorted; none for a plain request, so queues made before needs existed keep their
names), and `models` is `*` (any model), the one model the request names when a worker has
announced it, or `+` — one shared queue for requests naming several models or a model no worker
has announced, whose images the pop matches one by one. So the number of queues is bounded by
the models workers serve, never by what clients invent.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from enum import Enum, IntEnum

from horde_protocol import GenerationParams, SourceProcessing

ANY_MODEL = "*"
SEVERAL_MODELS = "+"
MODEL_SEPARATOR = ","

# Upper pixel bounds of the size classes, chosen at the max_pixels workers commonly announce.
SIZE_CLASS_BOUNDS: tuple[int, ...] = (
    256 * 256,
    512 * 512,
    640 * 640,
    768 * 768,
    1024 * 1024,
    1536 * 1536,
    2048 * 2048,
    3072 * 3072,
)


class Tier(IntEnum):
    """Priority tiers; a lower number is served first."""

    TRUSTED = 0
    REGISTERED = 1
    ANONYMOUS = 2
    IN_DEBT = 3  # a user whose balance is below zero: served after everyone else


# Within a tier, requests wait in kudos bands: a requester with half a decade more kudos (at the
# moment of the request) goes first; within a band, the oldest request. Band 0 holds a billion
# kudos and more, band 18 one to three, band 19 less than one.
_BAND_FLOORS_CENTS: tuple[int, ...] = tuple(
    round(100 * 10 ** (exponent / 2)) for exponent in range(18, -1, -1)
)
LAST_BAND = len(_BAND_FLOORS_CENTS)


def kudos_band(kudos_cents: int) -> int:
    for band, floor in enumerate(_BAND_FLOORS_CENTS):
        if kudos_cents >= floor:
            return band
    return LAST_BAND


@dataclass(frozen=True, order=True)
class Priority:
    """Where a request waits: its tier, then its kudos band; a lower one is served first."""

    tier: int
    band: int = LAST_BAND  # queues named before bands existed: every balance was 0

    @property
    def text(self) -> str:
        return f"{self.tier}.{self.band:02d}"

    @classmethod
    def of(cls, tier: Tier, kudos_cents: int) -> Priority:
        # Plain ints: Redis clients write IntEnum members badly (hiredis refuses them).
        if tier is Tier.ANONYMOUS:
            return cls(int(Tier.ANONYMOUS), 0)
        if kudos_cents < 0:
            return cls(int(Tier.IN_DEBT), 0)
        return cls(int(tier), kudos_band(kudos_cents))


class Kind:
    TXT2IMG = "t"
    IMG2IMG = "i"
    PAINTING = "p"


class Need(str, Enum):
    """What an image needs of its worker beyond model, size and kind; the letter goes into the
    queue's flags, the value is the pop's `skipped` reason when a worker lacks it."""

    LORA = "l"
    POST_PROCESSING = "p"
    CONTROLNET = "c"
    HIRES_FIX = "h"
    TILING = "t"
    SAFETY_CHECKER = "s"  # the NSFW censor: `censor_nsfw` on a request that is not NSFW
    INTERPOLATION = "i"  # our extension: params.interpolation

    @property
    def skip_reason(self) -> str:
        return _SKIP_REASONS[self]


_SKIP_REASONS = {
    Need.LORA: "lora",
    Need.POST_PROCESSING: "post-processing",
    Need.CONTROLNET: "controlnet",
    Need.HIRES_FIX: "hires_fix",
    Need.TILING: "tiling",
    Need.SAFETY_CHECKER: "nsfw_censor",
    Need.INTERPOLATION: "interpolation",
}
SKIP_REASON_OF_LETTER = {need.value: reason for need, reason in _SKIP_REASONS.items()}


def needs_of(params: GenerationParams, censored: bool = False) -> str:
    """The sorted need letters of a request (LoRAs and textual inversions both need a LoRA-capable
    worker: the public horde's workers serve both or neither). `censored`: its images go through
    the worker's safety checker."""
    needs = set()
    if censored:
        needs.add(Need.SAFETY_CHECKER)
    if params.loras or params.tis:
        needs.add(Need.LORA)
    if params.post_processing:
        needs.add(Need.POST_PROCESSING)
    if params.control_type is not None:
        needs.add(Need.CONTROLNET)
    if params.hires_fix:
        needs.add(Need.HIRES_FIX)
    if params.tiling:
        needs.add(Need.TILING)
    if params.interpolation is not None:
        needs.add(Need.INTERPOLATION)
    return "".join(sorted(need.value for need in needs))


def served_needs(
    *,
    lora: bool,
    post_processing: bool,
    controlnet: bool,
    hires_fix: bool,
    tiling: bool,
    safety_checker: bool,
    interpolation: bool,
) -> str:
    """The need letters a worker serves, from its pop flags."""
    flags = {
        Need.SAFETY_CHECKER: safety_checker,
        Need.LORA: lora,
        Need.POST_PROCESSING: post_processing,
        Need.CONTROLNET: controlnet,
        Need.HIRES_FIX: hires_fix,
        Need.TILING: tiling,
        Need.INTERPOLATION: interpolation,
    }
    return "".join(sorted(need.value for need, on in flags.items() if on))


def size_class_floor(pixels: int) -> int:
    """Exclusive lower bound of the size class holding an image of `pixels` pixels."""
    floor = 0
    for bound in SIZE_CLASS_BOUNDS:
        if pixels <= bound:
            return floor
        floor = bound
    return floor


def kind_of(has_source: bool, processing: SourceProcessing) -> str:
    if not has_source:
        return Kind.TXT2IMG
    if processing == SourceProcessing.IMG2IMG:
        return Kind.IMG2IMG
    return Kind.PAINTING


def models_part(models: list[str], known: Collection[str]) -> str:
    """The queue descriptor's models part (see the module's docstring)."""
    names = sorted(set(models))
    if not names:
        return ANY_MODEL
    if len(names) == 1 and names[0] in known:
        return names[0]
    return SEVERAL_MODELS


def counted_models(models: list[str]) -> str:
    """The key under which an image counts in the `queued` hashes (/status/models): its models
    joined by commas, `*` for any model. A key leaves the hashes when its count is back to zero,
    so they hold only what waits; /status/models lists only names workers announced."""
    if not models:
        return ANY_MODEL
    return MODEL_SEPARATOR.join(sorted(set(models)))


def descriptor(
    priority: Priority, pixels: int, kind: str, nsfw: bool, models: str, needs: str = ""
) -> str:
    """`models` is the models part (`models_part`)."""
    flags = f"{int(nsfw)}{needs}"
    return f"{priority.text}|{size_class_floor(pixels)}|{kind}|{flags}|{models}"


# Samplers that take two model evaluations per step (the public horde counts their steps twice).
DOUBLE_STEP_SAMPLERS = frozenset({"k_heun", "k_dpm_2", "k_dpm_2_a"})
IMG2IMG_DEFAULT_STRENGTH = 0.75


def accurate_steps(params: GenerationParams, kind: str) -> float:
    """The work of one image in steps, as the public horde weighs it for `limit_max_steps`."""
    steps = float(params.steps)
    if params.sampler_name in DOUBLE_STEP_SAMPLERS:
        steps *= 2
    if kind == Kind.IMG2IMG:
        steps *= params.denoising_strength or IMG2IMG_DEFAULT_STRENGTH
    return steps


def worker_kinds(allow_img2img: bool, allow_painting: bool) -> str:
    return (
        Kind.TXT2IMG
        + (Kind.IMG2IMG if allow_img2img else "")
        + (Kind.PAINTING if allow_painting else "")
    )


_DESCRIPTOR = re.compile(r"^(\d+)(?:\.(\d+))?\|(\d+)\|([a-z])\|(\d)([a-z]*)\|(.*)$")


@dataclass(frozen=True)
class Descriptor:
    """A queue's name read back (descriptors.py writes it)."""

    priority: Priority
    floor: int
    kind: str
    nsfw: bool
    needs: str
    models: str


def parse_descriptor(queue_name: str, prefix: str) -> Descriptor | None:
    """The descriptor of an rq queue name (`prefix` is the queue names' prefix)."""
    if not queue_name.startswith(prefix):
        return None
    found = _DESCRIPTOR.match(queue_name[len(prefix) :])
    if found is None:
        return None
    tier, band, floor, kind, nsfw, needs, models = found.groups()
    priority = Priority(int(tier), int(band)) if band else Priority(int(tier))
    return Descriptor(priority, int(floor), kind, nsfw == "1", needs, models)
