"""The exact things an image needs of its worker, below the coarse need letters of its queue.

The queue descriptor's need letters (descriptors.Need) say "post-processing", "LoRA",
"ControlNet"; which post-processors, LoRAs, textual inversions and control type the image needs
is checked per image by the pop's `image_misfit` against what the worker listed in its pop. The
job hash carries it as the compact JSON field `wants`, only when the image needs one of them:

  pp  post-processor names           cn  control type
  cm  1: the worker must compute the control map (image_is_control is false)
  lo  LoRA names (lower case)        ti  textual inversion names (lower case)

A worker that does not list a kind (the public horde's workers do not) serves any name of it,
as the public horde assumes; the Lua sees that as `'*'`.
"""

from __future__ import annotations

import json
from typing import Any

from horde_protocol import GenerationParams

ANY = "*"


def wants_of(params: GenerationParams) -> dict[str, Any]:
    wants: dict[str, Any] = {}
    if params.post_processing:
        wants["pp"] = list(params.post_processing)
    if params.control_type is not None:
        wants["cn"] = params.control_type.value
        if not params.image_is_control:
            wants["cm"] = 1
    if params.loras:
        wants["lo"] = sorted({lora.name.strip().lower() for lora in params.loras})
    if params.tis:
        wants["ti"] = sorted({ti.name.strip().lower() for ti in params.tis})
    return wants


def wants_json(wants: dict[str, Any]) -> str | None:
    """The job hash's `wants` field, or None when the image needs nothing listed."""
    return json.dumps(wants, separators=(",", ":")) if wants else None


def offered(names: list[str] | None, lower: bool = False) -> list[str] | str:
    """A worker's list as the pop script takes it: `'*'` when it listed none (= any)."""
    if names is None:
        return ANY
    return [name.strip().lower() for name in names] if lower else list(names)


def lacks(offer: list[str] | str | None, wanted: list[str]) -> bool:
    """Python's reading of the same rule (for is_possible and the status replies)."""
    if offer is None or offer == ANY:
        return False
    return any(name not in offer for name in wanted)


def worker_can_do(
    wants: dict[str, Any],
    *,
    post_processors: list[str] | str | None,
    controlnet_types: list[str] | str | None,
    control_map_types: list[str] | str | None,
    loras: list[str] | str | None,
    textual_inversions: list[str] | str | None,
) -> bool:
    control = [wants["cn"]] if "cn" in wants else []
    return not (
        lacks(post_processors, wants.get("pp", []))
        or lacks(controlnet_types, control)
        or (wants.get("cm") and lacks(control_map_types, control))
        or lacks(loras, wants.get("lo", []))
        or lacks(textual_inversions, wants.get("ti", []))
    )
