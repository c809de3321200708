"""AI Horde sampler names → diffusers schedulers, one fresh scheduler object per job.

Schedulers keep per-run state (timesteps, step index), so two jobs must never share one.
"""

from __future__ import annotations

import copy
import inspect
import threading
from dataclasses import dataclass, field
from typing import Any

from horde_protocol import SAMPLER_NAMES


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


class SchedulerCache:
    """Fresh schedulers without re-running their construction for every job.

    Building a scheduler from a config recomputes its noise schedule (about 1 ms); a deep copy
    of a never-used prototype is the same fresh object for a fraction of that. Each call still
    returns a new scheduler: they hold per-run state and are not thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (sampler, karras) -> (the base config it was built from, prototype)
        self._prototypes: dict[tuple[str, bool], tuple[Any, Any]] = {}

    def fresh(self, sampler_name: str, karras: bool, base_config: Any) -> Any:
        key = (sampler_name, karras)
        with self._lock:
            cached = self._prototypes.get(key)
        # Identity check: a model whose scheduler was replaced gets a new prototype.
        if cached is None or cached[0] is not base_config:
            cached = (base_config, make_scheduler(sampler_name, karras, base_config))
            with self._lock:
                self._prototypes[key] = cached
        return copy.deepcopy(cached[1])
