"""Which Stable Diffusion family a single-file checkpoint is, from its tensor names and shapes.

A `.safetensors` file is inspected through its header only (safetensors' `safe_open` maps the
file; no tensor is read), so telling a 7 GB SDXL file apart costs milliseconds. The original
(LDM/SGM) layouts differ by their text encoders: SD 1.x has OpenAI CLIP under
`cond_stage_model.transformer.`, SD 2.x OpenCLIP under `cond_stage_model.model.`, SDXL two
encoders under `conditioner.embedders.0/1.`. An inpainting UNet takes 9 input channels (latents,
mask, masked-image latents) instead of 4.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

UNET_IN = "model.diffusion_model.input_blocks.0.0.weight"


class Family(str, Enum):
    SD1 = "sd1"
    SD2 = "sd2"
    SDXL = "sdxl"


class CheckpointKindError(ValueError):
    """The file is not a Stable Diffusion checkpoint this worker can load."""


class UnsafeCheckpointError(CheckpointKindError):
    """A pickled .ckpt that needs code (not only tensors) to load: refused, never unpickled."""


@dataclass(frozen=True)
class CheckpointKind:
    family: Family
    inpainting: bool

    @property
    def name(self) -> str:
        return f"{self.family.value}{'-inpainting' if self.inpainting else ''}"


@dataclass(frozen=True)
class CheckpointHeader:
    shapes: dict[str, tuple[int, ...]]  # every tensor's shape by name
    metadata: dict[str, str]  # a .safetensors file's __metadata__ (a .ckpt has none)


def read_header(path: Path) -> CheckpointHeader:
    """Every tensor's shape and the file's metadata, without reading the weights."""
    if path.suffix.lower() == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118
            return CheckpointHeader(shapes, dict(handle.metadata() or {}))
    state = read_pickled_checkpoint(path)
    shapes = {key: tuple(value.shape) for key, value in state.items() if hasattr(value, "shape")}
    return CheckpointHeader(shapes, {})


def read_pickled_checkpoint(path: Path) -> dict[str, Any]:
    """The state dict of a pickled `.ckpt`, unpickled with `weights_only=True`: tensors and
    plain containers only. A pickle can name any Python callable to run while loading; a file
    that needs one is refused, never run."""
    import pickle
    import zipfile

    import torch

    try:
        # A zip-format file (torch >= 1.6) is memory-mapped, so its tensors stay on disk.
        loaded = torch.load(
            str(path), map_location="cpu", mmap=zipfile.is_zipfile(path), weights_only=True
        )
    except pickle.UnpicklingError as error:
        # torch names the first callable it refused ("... GLOBAL posix.mkdir ...").
        named = re.search(r"GLOBAL ([\w.]+)", str(error))
        needed = f"it calls {named[1]}" if named else "it holds a Python object, not a tensor"
        raise UnsafeCheckpointError(
            f"{path}: this .ckpt needs code to unpickle ({needed}); the worker loads .ckpt"
            " files only as plain tensors (torch.load weights_only), because unpickling code"
            " can run anything. Use the model's .safetensors release, or convert the file"
            " with a tool you trust"
        ) from None
    while isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict):
        raise CheckpointKindError(f"{path}: the .ckpt holds no state dict of tensors")
    return loaded


def classify(shapes: dict[str, tuple[int, ...]]) -> CheckpointKind:
    """The family and inpainting flag of a checkpoint's tensor names and shapes."""
    keys = shapes.keys()
    if UNET_IN not in shapes:
        raise CheckpointKindError(
            "no Stable Diffusion UNet in the original single-file layout"
            f" ({UNET_IN} is missing); convert the model to a diffusers folder"
        )
    if any(k.startswith("conditioner.embedders.1.") for k in keys):
        family = Family.SDXL
    elif any(k.startswith("conditioner.embedders.0.model.") for k in keys):
        raise CheckpointKindError("an SDXL refiner (one OpenCLIP encoder) cannot serve jobs alone")
    elif any(k.startswith("cond_stage_model.model.") for k in keys):
        family = Family.SD2
    elif any(k.startswith("cond_stage_model.transformer.") for k in keys):
        family = Family.SD1
    else:
        raise CheckpointKindError(
            "no text encoder in the file (neither SD 1.x, SD 2.x nor SDXL layout)"
        )
    in_channels = shapes[UNET_IN][1]
    if in_channels not in (4, 9):
        raise CheckpointKindError(f"a UNet with {in_channels} input channels (4 or 9 expected)")
    return CheckpointKind(family=family, inpainting=in_channels == 9)


def inspect_checkpoint(path: Path) -> tuple[CheckpointKind, CheckpointHeader]:
    """The family of the checkpoint at `path` and the header it was read from."""
    try:
        header = read_header(path)
    except UnsafeCheckpointError:
        raise
    except Exception as error:  # a truncated or foreign file: say which
        raise CheckpointKindError(f"{path}: not a readable checkpoint: {error}") from error
    try:
        return classify(header.shapes), header
    except CheckpointKindError as error:
        raise CheckpointKindError(f"{path}: {error}") from None


def detect_checkpoint(path: Path) -> CheckpointKind:
    return inspect_checkpoint(path)[0]
