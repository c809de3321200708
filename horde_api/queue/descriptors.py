"""Which rq queue an image waits in: one queue per (priority tier, size class, kind, nsfw, models).

A pop looks only at the heads of the queues whose descriptor the worker can serve, so its cost
depends on how many distinct kinds of work are waiting, never on how many images wait.

Descriptor text: `<tier>|<min_pixels>|<kind>|<nsfw>|<models>` where `min_pixels` is the
exclusive lower pixel bound of the size class (a worker with `max_pixels` above it may find
images it can take there), `kind` is t (txt2img), i (img2img) or p (inpainting/outpainting),
and `models` is `*` (any) or the request's model names joined by commas.
"""

from __future__ import annotations

from enum import IntEnum

from horde_protocol import SourceProcessing

ANY_MODEL = "*"
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


class Kind:
    TXT2IMG = "t"
    IMG2IMG = "i"
    PAINTING = "p"


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


def models_part(models: list[str]) -> str:
    if not models:
        return ANY_MODEL
    return MODEL_SEPARATOR.join(sorted(set(models)))


def descriptor(tier: Tier, pixels: int, kind: str, nsfw: bool, models: list[str]) -> str:
    return f"{int(tier)}|{size_class_floor(pixels)}|{kind}|{int(nsfw)}|{models_part(models)}"


def worker_kinds(allow_img2img: bool, allow_painting: bool) -> str:
    return (
        Kind.TXT2IMG
        + (Kind.IMG2IMG if allow_img2img else "")
        + (Kind.PAINTING if allow_painting else "")
    )
