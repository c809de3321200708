"""AI Horde sampler names this horde accepts; the worker maps each one to a diffusers scheduler."""

from __future__ import annotations

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
