"""Post-processing: the public horde's upscalers by name, from files the volunteer configured.

`post_processors = {RealESRGAN_x4plus = "/models/RealESRGAN_x4plus.pth"}` maps a horde name to a
weight file; the file is loaded once at start (a wrong file fails the start, not a job) and kept.
A job's post-processors run after generation, in the order the request asks for
(`post_processing_order`), each image tile by tile (worker/tiles.py). The result keeps the
upscaled size, as on the public horde (a 512x512 job with RealESRGAN_x4plus returns 2048x2048).

Face fixers (GFPGAN, CodeFormers) and strip_background are not served by this worker: it never
announces them, so our horde never hands it such a job (docs/worker.md says why).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from horde_protocol import FACE_FIXERS, UPSCALER_FACTORS, UPSCALERS, PostProcessingOrder
from horde_worker.device import Placement
from horde_worker.esrgan import RRDBNet, UpscalerLoadError, load_upscaler
from horde_worker.tiles import run_tiled

log = logging.getLogger(__name__)

SERVABLE = tuple(UPSCALERS)


class PostProcessorError(ValueError):
    """A configured post-processor cannot be served; the message names it and says why."""


def servable_problem(name: str) -> str | None:
    """Why `name` cannot be configured as a post-processor here, or None."""
    if name in SERVABLE:
        return None
    if name in FACE_FIXERS or name == "strip_background":
        return f"{name} is not supported by this worker (upscalers only: {', '.join(SERVABLE)})"
    return f"unknown post-processor {name!r}; the horde's upscalers are {', '.join(SERVABLE)}"


@dataclass
class Upscaler:
    name: str
    network: RRDBNet
    # One job at a time per network: tiles of two jobs would only compete for the same device.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def scale(self) -> int:
        return self.network.scale


def order_of(names: list[str], order: PostProcessingOrder | str | None) -> list[str]:
    """The order post-processors run in: face fixers first (the default), upscalers first, or
    as listed (`custom`)."""
    order = PostProcessingOrder(order or PostProcessingOrder.FACEFIXERS_FIRST)
    if order is PostProcessingOrder.CUSTOM:
        return list(names)
    faces = [name for name in names if name in FACE_FIXERS]
    others = [name for name in names if name not in FACE_FIXERS]
    return faces + others if order is PostProcessingOrder.FACEFIXERS_FIRST else others + faces


class PostProcessors:
    """The loaded post-processors by horde name."""

    def __init__(self, placement: Placement, tile: int = 256, margin: int = 16) -> None:
        self.placement = placement
        self.tile = tile
        self.margin = margin
        self._upscalers: dict[str, Upscaler] = {}

    def load(self, configured: dict[str, str]) -> None:
        for name, source in configured.items():
            problem = servable_problem(name)
            if problem:
                raise PostProcessorError(problem)
            try:
                network = load_upscaler(Path(source).expanduser())
            except (UpscalerLoadError, OSError) as error:
                raise PostProcessorError(f"post-processor {name} ({source}): {error}") from None
            if network.scale != UPSCALER_FACTORS[name]:
                raise PostProcessorError(
                    f"post-processor {name} ({source}) is a {network.scale}x model, but {name}"
                    f" is {UPSCALER_FACTORS[name]}x on the horde"
                )
            network.to(device=self.placement.device, dtype=self.placement.dtype)
            log.info("loaded post-processor %s from %s (%dx)", name, source, network.scale)
            self._upscalers[name] = Upscaler(name, network)

    @property
    def names(self) -> list[str]:
        return list(self._upscalers)

    def get(self, name: str) -> Upscaler | None:
        return self._upscalers.get(name)

    def apply(
        self, image: Image.Image, names: list[str], order: PostProcessingOrder | str | None
    ) -> Image.Image:
        for name in order_of(names, order):
            upscaler = self._upscalers.get(name)
            if upscaler is None:
                raise PostProcessorError(f"post-processor {name} is not loaded here")
            with upscaler.lock:
                image = run_tiled(
                    upscaler.network,
                    image,
                    upscaler.scale,
                    tile=self.tile,
                    margin=self.margin,
                    device=self.placement.device,
                    dtype=self.placement.dtype,
                )
        return image
