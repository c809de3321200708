"""What an image request costs and what its worker earns, by the public AI Horde's rules.

Sources (Haidra-Org/AI-Horde; docs/protocol.md, "Kudos", cites each):
- the price of one image (`wp.kudos`): the horde's fallback formula of
  `ImageWaitingPrompt.calculate_kudos` (pixels and steps, ×1.2 per post-processor, ×3 for
  ControlNet unless the map itself is returned), +3 per LoRA, +1 if any textual inversion. The
  public horde prices first with a small trained network whose weights it ships as a binary
  checkpoint; this horde uses the formula the public horde falls back to (docs/protocol.md).
- what the requester pays: 1 kudos when the request is accepted, then for each finished image
  `calculate_extra_kudos_burn` of the image's price: ×1.3 with a source image, × each
  post-processor's factor (1.05 upscalers, 1 others), +1, ×1.2 with `slow_workers: false`,
  ×1.1 with `worker_blacklist`;
- what the worker's owner earns per image: the image's price × the bridge factor (1 for the
  horde's own worker and the public horde's official ones, 0.75 for other software).

Every amount is rounded to hundredths, as the public horde rounds kudos.
"""

from __future__ import annotations

from dataclasses import dataclass

from horde_protocol import UPSCALERS, GenerationInput, GenerationParams

ACTIVATION_TAX = 1.0
PER_IMAGE_TAX = 1.0
LORA_SURCHARGE = 3.0
TEXTUAL_INVERSION_SURCHARGE = 1.0
SOURCE_IMAGE_FACTOR = 1.3
FAST_WORKERS_FACTOR = 1.2  # slow_workers: false
BLACKLIST_FACTOR = 1.1  # worker_blacklist: true
UPSCALER_FACTOR = 1.05
LEGACY_POST_PROCESSOR_FACTOR = 1.2
LEGACY_CONTROLNET_FACTOR = 3.0
OTHER_BRIDGE_FACTOR = 0.75
# Workers whose every image earns its full price: ours, and the public horde's official ones.
FULL_PRICE_BRIDGES = frozenset({"krita-horde-worker", "AI Horde Worker reGen", "AI Horde Worker"})


def _cents(value: float) -> float:
    return round(value, 2)


def image_price(params: GenerationParams) -> float:
    """The price of one image (`wp.kudos`), which its worker earns and its requester's burn
    starts from."""
    pixels = params.width * params.height
    area = pow(pixels - 64 * 64, 1.75) / pow(1024 * 1024 - 64 * 64, 1.75)
    steps = params.steps
    price = _cents(0.1232 * steps + area * (0.1232 * steps * 8.75))
    for _ in params.post_processing:
        price = _cents(price * LEGACY_POST_PROCESSOR_FACTOR)
    if params.control_type is not None and not params.return_control_map:
        price = _cents(price * LEGACY_CONTROLNET_FACTOR)
    price += LORA_SURCHARGE * len(params.loras)
    if params.tis:
        price += TEXTUAL_INVERSION_SURCHARGE
    return _cents(price)


@dataclass(frozen=True)
class BurnFactors:
    """What makes a requester pay more than an image's price."""

    source_image: bool
    post_processing: tuple[str, ...]
    slow_workers: bool
    worker_blacklist: bool

    @classmethod
    def of(cls, spec: GenerationInput) -> BurnFactors:
        return cls(
            source_image=spec.source_image is not None,
            post_processing=tuple(spec.params.post_processing),
            slow_workers=spec.slow_workers,
            worker_blacklist=spec.worker_blacklist,
        )


def requester_burn(price: float, factors: BurnFactors) -> float:
    """What the requester pays when one image of `price` is finished (a censored image is
    paid as if its price were 0: the +1 and the factors after it)."""
    kudos = price
    if factors.source_image:
        kudos *= SOURCE_IMAGE_FACTOR
    for name in factors.post_processing:
        kudos *= UPSCALER_FACTOR if name in UPSCALERS else 1.0
    kudos += PER_IMAGE_TAX
    if not factors.slow_workers:
        kudos *= FAST_WORKERS_FACTOR
    if factors.worker_blacklist:
        kudos *= BLACKLIST_FACTOR
    return _cents(kudos)


@dataclass(frozen=True)
class RequestPrice:
    """A request's price: per image, what its requester pays per image, and in all."""

    image: float
    burn: float
    censored_burn: float
    total: float


def request_price(spec: GenerationInput) -> RequestPrice:
    """The price of `spec`; `total` is what `dry_run` and the async reply say: the activation
    tax and every image's burn."""
    image = image_price(spec.params)
    factors = BurnFactors.of(spec)
    burn = requester_burn(image, factors)
    return RequestPrice(
        image=image,
        burn=burn,
        censored_burn=requester_burn(0.0, factors),
        total=_cents(ACTIVATION_TAX + burn * spec.params.n),
    )


def bridge_factor(bridge_agent: str) -> float:
    """The share of an image's price its worker's owner earns, by the worker's software
    (`bridge_agent` is `name:version:url`)."""
    name = bridge_agent.split(":", 1)[0]
    return 1.0 if name in FULL_PRICE_BRIDGES else OTHER_BRIDGE_FACTOR


def worker_reward(price: float, bridge_agent: str) -> float:
    return _cents(price * bridge_factor(bridge_agent))
