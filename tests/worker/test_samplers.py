"""Every AI Horde sampler name maps to a diffusers scheduler; karras where it exists."""

from __future__ import annotations

import pytest

from horde_protocol import SAMPLER_NAMES
from horde_worker.models import LoadedModel
from horde_worker.samplers import SAMPLERS, SchedulerCache, UnknownSamplerError, make_scheduler

EXPECTED = {
    "k_euler": "EulerDiscreteScheduler",
    "k_euler_a": "EulerAncestralDiscreteScheduler",
    "k_heun": "HeunDiscreteScheduler",
    "k_lms": "LMSDiscreteScheduler",
    "k_dpm_2": "KDPM2DiscreteScheduler",
    "k_dpm_2_a": "KDPM2AncestralDiscreteScheduler",
    "k_dpmpp_2m": "DPMSolverMultistepScheduler",
    "k_dpmpp_sde": "DPMSolverMultistepScheduler",
    "DDIM": "DDIMScheduler",
}


def test_table_covers_the_protocol() -> None:
    assert set(SAMPLERS) == set(SAMPLER_NAMES) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sampler_maps_to_its_scheduler(name: str, tiny_model: LoadedModel) -> None:
    base = tiny_model.pipeline.scheduler.config
    plain = make_scheduler(name, False, base)
    karras = make_scheduler(name, True, base)
    assert type(plain).__name__ == EXPECTED[name]
    assert plain is not make_scheduler(name, False, base), "schedulers must be fresh per job"
    if "use_karras_sigmas" in plain.config:
        assert plain.config.use_karras_sigmas is False
        assert karras.config.use_karras_sigmas is True
    if name == "k_dpmpp_sde":
        assert plain.config.algorithm_type == "sde-dpmsolver++"


def test_karras_ignored_where_unsupported(tiny_model: LoadedModel) -> None:
    scheduler = make_scheduler("k_euler_a", True, tiny_model.pipeline.scheduler.config)
    assert "use_karras_sigmas" not in scheduler.config


def test_unknown_sampler_is_an_error_listing_known_ones(tiny_model: LoadedModel) -> None:
    with pytest.raises(UnknownSamplerError, match=r"unknown sampler 'k_nope'.*k_euler"):
        make_scheduler("k_nope", False, tiny_model.pipeline.scheduler.config)


def test_cached_schedulers_are_fresh_copies_of_the_built_one(tiny_model: LoadedModel) -> None:
    import torch

    base = tiny_model.pipeline.scheduler.config
    cache = SchedulerCache()
    first = cache.fresh("k_dpmpp_2m", True, base)
    first.set_timesteps(7)  # per-run state must not leak into the next job's scheduler
    second = cache.fresh("k_dpmpp_2m", True, base)
    built = make_scheduler("k_dpmpp_2m", True, base)
    assert second is not first and second.sigmas is not first.sigmas
    assert dict(second.config) == dict(built.config)
    assert second.num_inference_steps is None and len(second.timesteps) == len(built.timesteps)
    assert torch.equal(second.sigmas, built.sigmas)


def test_scheduler_cache_follows_a_replaced_base_config(tiny_model: LoadedModel) -> None:
    cache = SchedulerCache()
    base = tiny_model.pipeline.scheduler.config
    assert cache.fresh("DDIM", False, base).config.num_train_timesteps == base.num_train_timesteps
    other = make_scheduler("DDIM", False, base).from_config(base, num_train_timesteps=500).config
    assert cache.fresh("DDIM", False, other).config.num_train_timesteps == 500
