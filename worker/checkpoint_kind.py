"""Which Stable Diffusion family a single-file checkpoint is, from its tensor names and shapes.

A `.safetensors` file is inspected through its header only (safetensors' `safe_open` maps the
file; no tensor is read), so telling a 7 GB SDXL file apart costs milliseconds. The original
(LDM/SGM) layouts differ by their text encoders: SD 1.x has OpenAI CLIP under
`cond_stage_model.transformer.`, SD 2.x OpenCLIP under `cond_stage_model.model.`, SDXL two
encoders under `conditioner.embedders.0/1.`. An inpainting UNet takes 9 input channels (latents,
mask, masked-image latents) instead of 4.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

UNET_IN = "model.diffusion_model.input_blocks.0.0.weight"


class Family(str, Enum):
    SD1 = "sd1"
    SD2 = "sd2"
    SDXL = "sdxl"


class CheckpointKindError(ValueError):
    """The file is not a Stable Diffusion checkpoint this worker can load."""


@dataclass(frozen=True)
class CheckpointKind:
    family: Family
    inpainting: bool

    @property
    def name(self) -> str:
        return f"{self.family.value}{'-inpainting' if self.inpainting else ''}"


def tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape, without reading the weights."""
    if path.suffix.lower() == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118
    import torch

    # A pickled .ckpt has no header: memory-map it so the tensors stay on disk.
    loaded = torch.load(str(path), map_location="cpu", mmap=True, weights_only=True)
    state = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else {}
    return {key: tuple(value.shape) for key, value in state.items() if hasattr(value, "shape")}


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


def detect_checkpoint(path: Path) -> CheckpointKind:
    try:
        shapes = tensor_shapes(path)
    except Exception as error:  # a truncated or foreign file: say which
        raise CheckpointKindError(f"{path}: not a readable checkpoint: {error}") from error
    try:
        return classify(shapes)
    except CheckpointKindError as error:
        raise CheckpointKindError(f"{path}: {error}") from None
