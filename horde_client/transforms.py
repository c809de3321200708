"""The named img2img transforms of `horde vary` (the tables in docs/cli.md are these; a test
keeps them equal).

A single-step transform is a set of (scale, strength) pairs run as one batch: one request per
pair, all on the input image. A multi-step transform is a chain: each step runs on the previous
step's output, so its strength falls as the image settles.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class TransformKind(str, Enum):
    SINGLE = "single step"
    CHAIN = "multi step"


@dataclass(frozen=True)
class Transform:
    name: str
    kind: TransformKind
    pairs: tuple[tuple[float, float], ...]  # (cfg scale, denoising strength)
    purpose: str


TRANSFORMS: dict[str, Transform] = {
    transform.name: transform
    for transform in (
        Transform(
            "normal",
            TransformKind.SINGLE,
            ((7.5, 0.45), (7.5, 0.55), (9.0, 0.45), (9.0, 0.55)),
            "variations that keep the composition",
        ),
        Transform(
            "shake",
            TransformKind.SINGLE,
            ((7.5, 0.25), (7.5, 0.3), (7.5, 0.35)),
            "small changes: details move, the picture stays",
        ),
        Transform(
            "focus",
            TransformKind.SINGLE,
            ((12.0, 0.4), (15.0, 0.4), (12.0, 0.5), (15.0, 0.5)),
            "follow the prompt more closely",
        ),
        Transform(
            "unfocus",
            TransformKind.SINGLE,
            ((3.0, 0.4), (4.5, 0.4), (3.0, 0.5), (4.5, 0.5)),
            "let the model drift from the prompt",
        ),
        Transform(
            "unstuck",
            TransformKind.SINGLE,
            ((7.5, 0.7), (7.5, 0.8), (9.0, 0.75)),
            "strong repaints to leave a dead end",
        ),
        Transform(
            "beast",
            TransformKind.CHAIN,
            ((7.5, 0.6), (11.0, 0.45), (15.0, 0.3)),
            "repaint, then sharpen toward the prompt",
        ),
        Transform(
            "god",
            TransformKind.CHAIN,
            ((9.0, 0.75), (9.0, 0.6), (12.0, 0.45), (15.0, 0.3)),
            "a long chain from a strong repaint to a tight finish",
        ),
        Transform(
            "enhance",
            TransformKind.CHAIN,
            ((7.5, 0.35), (9.0, 0.25)),
            "add detail without changing the picture",
        ),
        Transform(
            "finalize",
            TransformKind.CHAIN,
            ((7.5, 0.2), (7.5, 0.15), (7.5, 0.1)),
            "polish: ever lighter passes",
        ),
    )
}


def transform_named(name: str) -> Transform:
    try:
        return TRANSFORMS[name]
    except KeyError:
        raise ValueError(f"unknown transform {name!r}; known: {', '.join(TRANSFORMS)}") from None
