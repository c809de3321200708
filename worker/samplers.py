"""AI Horde sampler names → diffusers schedulers, one fresh scheduler object per job.

Schedulers keep per-run state (timesteps, step index), so two jobs must never share one.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from horde_api.protocol import SAMPLER_NAMES


class UnknownSamplerError(ValueError):
    """The job asked for a sampler this worker cannot map to a diffusers scheduler."""


@dataclass(frozen=True)
class SamplerSpec:
    scheduler_class: str
    extra_config: dict[str, Any] = field(default_factory=dict)


# `k_dpmpp_sde` would be DPMSolverSDEScheduler, which needs the optional torchsde package; the
# multistep solver in its SDE variant is the same family of sampler without the dependency.
SAMPLERS: dict[str, SamplerSpec] = {
    "k_euler": SamplerSpec("EulerDiscreteScheduler"),
    "k_euler_a": SamplerSpec("EulerAncestralDiscreteScheduler"),
    "k_heun": SamplerSpec("HeunDiscreteScheduler"),
    "k_lms": SamplerSpec("LMSDiscreteScheduler"),
    "k_dpm_2": SamplerSpec("KDPM2DiscreteScheduler"),
    "k_dpm_2_a": SamplerSpec("KDPM2AncestralDiscreteScheduler"),
    "k_dpmpp_2m": SamplerSpec("DPMSolverMultistepScheduler"),
    "k_dpmpp_sde": SamplerSpec(
        "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}
    ),
    "DDIM": SamplerSpec("DDIMScheduler"),
}

assert set(SAMPLERS) == set(SAMPLER_NAMES), "sampler table out of sync with the protocol"


def supports_karras(scheduler_class: type) -> bool:
    return "use_karras_sigmas" in inspect.signature(scheduler_class.__init__).parameters


def make_scheduler(sampler_name: str, karras: bool, base_config: Any) -> Any:
    """A new scheduler for `sampler_name`, configured from the model's own scheduler config.

    `karras` is honoured where the scheduler has Karras sigmas and silently ignored where it
    has none (Euler ancestral, LMS, DDIM), as the public horde's workers do.
    """
    import diffusers

    spec = SAMPLERS.get(sampler_name)
    if spec is None:
        raise UnknownSamplerError(
            f"unknown sampler {sampler_name!r}; this worker knows: {', '.join(SAMPLERS)}"
        )
    scheduler_class = getattr(diffusers, spec.scheduler_class)
    overrides: dict[str, Any] = dict(spec.extra_config)
    if karras and supports_karras(scheduler_class):
        overrides["use_karras_sigmas"] = True
    return scheduler_class.from_config(base_config, **overrides)
