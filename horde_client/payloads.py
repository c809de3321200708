"""The `/generate/async` bodies the CLI sends: exactly the fields it means, nothing else.

The public horde routes on the mere presence of some keys (`loras`, `tis`, `control_type`, …: a
`loras: []` reaches only LoRA workers), so a body is built from the fields set here and dumped
with `exclude_unset`; defaults of the protocol model never travel. The contract test
(tests/cli/test_payload_contract.py) checks every body against the public horde's rules.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from horde_protocol import (
    GenerationInput,
    GenerationParams,
    Interpolation,
    SourceProcessing,
)
from horde_protocol.prompts import NEGATIVE_PROMPT_SEPARATOR
from horde_protocol.seeds import random_seed


class Mode(str, Enum):
    TXT2IMG = "txt2img"
    IMG2IMG = "img2img"
    INPAINTING = "inpainting"


@dataclass(frozen=True)
class RequestSpec:
    """One request as the CLI means it (sizes already multiples of 64)."""

    prompt: str
    width: int
    height: int
    steps: int
    cfg_scale: float
    sampler: str
    seed: int = field(default_factory=random_seed)
    negative: str = ""
    model: str | None = None
    n: int = 1
    strength: float | None = None
    source_png: bytes | None = None
    mask_png: bytes | None = None
    interpolation: Interpolation | None = None

    @property
    def mode(self) -> Mode:
        if self.source_png is None:
            return Mode.TXT2IMG
        return Mode.INPAINTING if self.mask_png is not None else Mode.IMG2IMG

    @property
    def full_prompt(self) -> str:
        if not self.negative.strip():
            return self.prompt.strip()
        return f"{self.prompt.strip()} {NEGATIVE_PROMPT_SEPARATOR} {self.negative.strip()}"

    def with_seed(self, seed: int) -> RequestSpec:
        return replace(self, seed=seed)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def build_body(spec: RequestSpec) -> dict[str, Any]:
    """The JSON body of `POST /generate/async` for `spec` (raises ValueError on a bad value)."""
    params: dict[str, Any] = {
        "width": spec.width,
        "height": spec.height,
        "steps": spec.steps,
        "cfg_scale": spec.cfg_scale,
        "sampler_name": spec.sampler,
        # Always a seed of our own: the file names and metadata then tell every image's seed.
        "seed": str(spec.seed),
        "n": spec.n,
    }
    if spec.n > 1:
        # Without it the public horde gives all n images the same seed: n identical images.
        params["seed_variation"] = 1
    if spec.mode is not Mode.TXT2IMG and spec.strength is not None:
        params["denoising_strength"] = spec.strength
    if spec.interpolation is not None:
        params["interpolation"] = spec.interpolation
    body: dict[str, Any] = {
        "prompt": spec.full_prompt,
        "params": GenerationParams(**params),
        # Inline results: every worker can serve them, on any horde (r2 needs a capable bridge).
        "r2": False,
    }
    if spec.model:
        body["models"] = [spec.model]
    if spec.source_png is not None:
        body["source_image"] = _b64(spec.source_png)
        painting = spec.mode is Mode.INPAINTING
        body["source_processing"] = (
            SourceProcessing.INPAINTING if painting else SourceProcessing.IMG2IMG
        )
    if spec.mask_png is not None:
        body["source_mask"] = _b64(spec.mask_png)
    return GenerationInput(**body).model_dump(mode="json", exclude_unset=True)
