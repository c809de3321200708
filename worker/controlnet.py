"""ControlNet: control maps and the ControlNet models a volunteer configured, by control type.

`controlnets = {canny = "/models/sd-controlnet-canny"}` maps a horde control type to a diffusers
ControlNet folder (or a single .safetensors file). A job with `control_type` is generated as on
the public horde: the source image is the img2img start (at `denoising_strength`) and the
control map conditions every step. The map is the source itself when `image_is_control` is
set, else it is computed from the source by the type's detector. This worker computes canny
maps (OpenCV's Canny edge detector, thresholds 100/200 as ControlNet's canny model was trained
with); other types are served only with `image_is_control`. `return_control_map` returns the
map instead of generating.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from horde_protocol import ControlType
from horde_worker.device import Placement

log = logging.getLogger(__name__)

CANNY_LOW, CANNY_HIGH = 100, 200


class ControlNetError(ValueError):
    """A configured ControlNet cannot be loaded, or a control map cannot be made."""


def canny_map(image: Image.Image) -> Image.Image:
    """White edges on black, three channels, as ControlNet's canny model expects."""
    import cv2

    grey = np.asarray(image.convert("L"))
    edges = cv2.Canny(grey, CANNY_LOW, CANNY_HIGH)
    return Image.fromarray(np.stack([edges] * 3, axis=-1), mode="RGB")


# Control types whose map this worker can compute from a plain image.
DETECTORS: dict[str, Callable[[Image.Image], Image.Image]] = {ControlType.CANNY.value: canny_map}


def control_map(source: Image.Image, control_type: str, image_is_control: bool) -> Image.Image:
    if image_is_control:
        return source.convert("RGB")
    detector = DETECTORS.get(control_type)
    if detector is None:
        raise ControlNetError(
            f"this worker cannot compute a {control_type} map; send the map itself with"
            " image_is_control, or use canny"
        )
    return detector(source)


def type_problem(control_type: str) -> str | None:
    known = [member.value for member in ControlType]
    if control_type in known:
        return None
    return f"unknown control type {control_type!r}; the horde's are {', '.join(known)}"


@dataclass
class LoadedControlNet:
    control_type: str
    source: str
    model: Any  # diffusers ControlNetModel


def load_controlnet(source: str, placement: Placement) -> Any:
    from diffusers import ControlNetModel

    path = Path(source).expanduser()
    common = {"torch_dtype": placement.dtype, "local_files_only": True}
    try:
        if path.is_dir():
            model = ControlNetModel.from_pretrained(str(path), **common)
        elif path.is_file():
            model = ControlNetModel.from_single_file(str(path), **common)
        else:
            raise ControlNetError(f"{source}: no such folder or file")
    except (OSError, ValueError) as error:
        if isinstance(error, ControlNetError):
            raise
        raise ControlNetError(
            f"cannot load ControlNet {source!r}: {error} (a diffusers ControlNet folder, with"
            " config.json, loads offline; a single file needs its config in the local cache)"
        ) from None
    return model.to(placement.device).eval()


class ControlNets:
    """The loaded ControlNet models by control type (each loaded once, shared by all jobs)."""

    def __init__(self, placement: Placement) -> None:
        self.placement = placement
        self._models: dict[str, LoadedControlNet] = {}

    def load(self, configured: dict[str, str]) -> None:
        for control_type, source in configured.items():
            problem = type_problem(control_type)
            if problem:
                raise ControlNetError(problem)
            model = load_controlnet(source, self.placement)
            log.info("loaded ControlNet %s from %s", control_type, source)
            self._models[control_type] = LoadedControlNet(control_type, source, model)

    @property
    def types(self) -> list[str]:
        return list(self._models)

    @property
    def map_types(self) -> list[str]:
        """Types whose map this worker can also compute from a plain image."""
        return [control_type for control_type in self._models if control_type in DETECTORS]

    def get(self, control_type: str) -> Any | None:
        loaded = self._models.get(control_type)
        return loaded.model if loaded else None
