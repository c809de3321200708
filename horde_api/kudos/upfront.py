"""Requests a user must already have the kudos for, as on the public AI Horde.

Its rule (`ImageWaitingPrompt.require_upfront_kudos`): a request that asks for fast workers
only (`slow_workers: false`), weighs more than 50 steps (ControlNet: 20), or is larger than
`max_res`² — `max_res` = 1024 + 10 × the live workers' threads − 0.9 × the waiting requests,
kept within 576..1024 — needs the requester's balance to cover its whole price, else it is
refused (403 `KudosUpfront`) or, with `allow_downgrade`, made smaller until it needs no kudos
up front (`downgrade`, the public horde's `wp.downgrade`).
"""

from __future__ import annotations

import math

from horde_api.queue.descriptors import accurate_steps, kind_of
from horde_protocol import SIDE_MULTIPLE, GenerationInput

MAX_FREE_STEPS = 50
MAX_FREE_CONTROLNET_STEPS = 20
MIN_MAX_RESOLUTION = 576
MAX_MAX_RESOLUTION = 1024
# What a downgraded request keeps at most (the public horde's model default of 30 steps).
DOWNGRADED_STEPS = 30
DOWNGRADED_CONTROLNET_STEPS = 20
MIN_DOWNGRADED_STEPS = 5
MIN_DOWNGRADED_SIDE = 512


def max_resolution(threads: int, waiting_requests: int) -> int:
    """The side of the largest square a request may have without kudos up front."""
    side = 1024 + threads * 10 - round(waiting_requests * 0.9)
    return min(max(side, MIN_MAX_RESOLUTION), MAX_MAX_RESOLUTION)


def _steps(spec: GenerationInput) -> float:
    return accurate_steps(
        spec.params, kind_of(spec.source_image is not None, spec.source_processing)
    )


def upfront_reason(spec: GenerationInput, max_res: int) -> str | None:
    """Why `spec` needs kudos up front (for the refusal's message), or None."""
    params = spec.params
    if not spec.slow_workers:
        return "it asks for fast workers only (slow_workers: false)"
    steps = _steps(spec)
    if steps > MAX_FREE_STEPS:
        return f"it weighs {steps:g} steps, over {MAX_FREE_STEPS}"
    if params.width * params.height > max_res * max_res:
        return f"it is larger than {max_res}x{max_res} ({params.width}x{params.height})"
    if params.control_type is not None and steps > MAX_FREE_CONTROLNET_STEPS:
        return f"it uses ControlNet with {steps:g} steps, over {MAX_FREE_CONTROLNET_STEPS}"
    return None


def downgrade(spec: GenerationInput, max_res: int) -> GenerationInput:
    """`spec` made small enough to need no kudos up front: any worker, at most `max_res`² pixels
    (sides in multiples of 64, at least 512), and few enough steps."""
    params = spec.params
    width, height = params.width, params.height
    if width * height > max_res * max_res:
        scale = math.sqrt(max_res * max_res / (width * height))
        width = max(MIN_DOWNGRADED_SIDE, int(width * scale) // SIDE_MULTIPLE * SIDE_MULTIPLE)
        height = max(MIN_DOWNGRADED_SIDE, int(height * scale) // SIDE_MULTIPLE * SIDE_MULTIPLE)
    limit = DOWNGRADED_CONTROLNET_STEPS if params.control_type is not None else DOWNGRADED_STEPS
    steps = params.steps
    smaller = spec.model_copy(
        update={
            "slow_workers": True,
            "params": params.model_copy(update={"width": width, "height": height}),
        }
    )
    while steps > MIN_DOWNGRADED_STEPS and _steps(_with_steps(smaller, steps)) > limit:
        steps -= 1
    return _with_steps(smaller, steps)


def _with_steps(spec: GenerationInput, steps: int) -> GenerationInput:
    return spec.model_copy(update={"params": spec.params.model_copy(update={"steps": steps})})
