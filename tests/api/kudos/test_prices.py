"""Prices, burns and rewards against the public AI Horde's own numbers.

The expected prices are the public horde's fallback formula (`ImageWaitingPrompt.calculate_kudos`,
its "legacy calculation": raw steps, pixels above 64², ×1.2 per post-processor, ×3 for ControlNet
without the control map) worked out by hand for each row, not by our code."""

from __future__ import annotations

import pytest

from horde_api.kudos.prices import (
    BurnFactors,
    bridge_factor,
    image_price,
    request_price,
    requester_burn,
    worker_reward,
)
from horde_api.kudos.uptime import uptime_reward
from horde_protocol import GenerationInput, GenerationParams


def _params(**fields: object) -> GenerationParams:
    return GenerationParams.model_validate(fields)


@pytest.mark.parametrize(
    ("fields", "price"),
    [
        ({"width": 512, "height": 512, "steps": 50}, 10.83),
        ({"width": 1024, "height": 1024, "steps": 50}, 60.06),
        ({"width": 64, "height": 64, "steps": 4}, 0.49),
        ({"width": 512, "height": 768, "steps": 30}, 9.44),
        # One post-processor: ×1.2 of the rounded price (6.5 → 7.8).
        ({"width": 512, "height": 512, "steps": 30, "post_processing": ["GFPGAN"]}, 7.8),
        # ControlNet without its map: ×3 (4.33 → 12.99); with the map returned: no surcharge.
        ({"width": 512, "height": 512, "steps": 20, "control_type": "canny"}, 12.99),
        (
            {"width": 512, "height": 512, "steps": 20, "control_type": "canny",
             "return_control_map": True},
            4.33,
        ),
        # The sampler does not change the price in the newest formula (raw steps).
        ({"width": 512, "height": 512, "steps": 50, "sampler_name": "k_heun"}, 10.83),
        # +3 per LoRA, +1 if any textual inversion.
        (
            {"width": 512, "height": 512, "steps": 50, "loras": [{"name": "a"}, {"name": "b"}],
             "tis": [{"name": "t1"}, {"name": "t2"}]},
            17.83,
        ),
    ],
)  # fmt: skip
def test_image_price_is_the_public_formula(fields: dict[str, object], price: float) -> None:
    assert image_price(_params(**fields)) == price


def test_burn_factors_apply_in_the_public_order() -> None:
    plain = BurnFactors(
        source_image=False, post_processing=(), slow_workers=True, worker_blacklist=False
    )
    assert requester_burn(10.83, plain) == 11.83  # + the per-image tax
    everything = BurnFactors(
        source_image=True,
        post_processing=("RealESRGAN_x4plus", "GFPGAN"),
        slow_workers=False,
        worker_blacklist=True,
    )
    # ((10 × 1.3 × 1.05 × 1) + 1) × 1.2 × 1.1
    assert requester_burn(10.0, everything) == round((10 * 1.3 * 1.05 + 1) * 1.2 * 1.1, 2)
    # A censored image is paid as if it cost nothing: the tax and the factors after it.
    assert requester_burn(0.0, everything) == round(1 * 1.2 * 1.1, 2)


def test_request_total_is_the_activation_tax_and_every_image() -> None:
    spec = GenerationInput.model_validate(
        {"prompt": "a cat", "params": {"width": 512, "height": 512, "steps": 50, "n": 3}}
    )
    price = request_price(spec)
    assert (price.image, price.burn, price.censored_burn) == (10.83, 11.83, 1.0)
    assert price.total == round(1 + 3 * 11.83, 2)


@pytest.mark.parametrize(
    ("agent", "factor"),
    [
        ("krita-horde-worker:0.3.0:https://example.org", 1.0),
        ("AI Horde Worker reGen:9.0.0:https://github.com/Haidra-Org", 1.0),
        ("unknown:0:unknown", 0.75),
        ("some-bridge", 0.75),
    ],
)
def test_worker_reward_by_bridge(agent: str, factor: float) -> None:
    assert bridge_factor(agent) == factor
    assert worker_reward(10.83, agent) == round(10.83 * factor, 2)


def test_uptime_reward_per_ten_minutes() -> None:
    assert uptime_reward(model_count=1, takes_loras=False) == 52
    assert uptime_reward(model_count=3, takes_loras=True) == 50 + 6 + 30
