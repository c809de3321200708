"""Single-file checkpoints: the family and inpainting flag read from the tensor names and shapes
(header only), and the configs shipped in the package that load them without the hub."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from horde_worker.checkpoint_kind import (
    UNET_IN,
    CheckpointKind,
    CheckpointKindError,
    Family,
    UnsafeCheckpointError,
    detect_checkpoint,
)
from horde_worker.device import resolve_placement
from horde_worker.models import ModelLoadError, load_pipeline
from horde_worker.single_file import config_folder

# The first tensor of each text encoder in the original (LDM/SGM) layouts.
SD1_TEXT = "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"
SD2_TEXT = "cond_stage_model.model.token_embedding.weight"
SDXL_TEXTS = (
    "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight",
    "conditioner.embedders.1.model.token_embedding.weight",
)


def _checkpoint(path: Path, text_keys: tuple[str, ...], in_channels: int) -> Path:
    """A file with the real key names of a family; the tensors are tiny except where the
    shape is what tells (the UNet's input convolution)."""
    tensors = {key: torch.zeros(2, 2) for key in text_keys}
    tensors[UNET_IN] = torch.zeros(320, in_channels, 3, 3)
    tensors["first_stage_model.decoder.conv_in.weight"] = torch.zeros(2, 2)
    save_file(tensors, str(path))
    return path


@pytest.mark.parametrize(
    ("text_keys", "in_channels", "expected"),
    [
        ((SD1_TEXT,), 4, CheckpointKind(Family.SD1, False)),
        ((SD1_TEXT,), 9, CheckpointKind(Family.SD1, True)),
        ((SD2_TEXT,), 4, CheckpointKind(Family.SD2, False)),
        ((SD2_TEXT,), 9, CheckpointKind(Family.SD2, True)),
        (SDXL_TEXTS, 4, CheckpointKind(Family.SDXL, False)),
        (SDXL_TEXTS, 9, CheckpointKind(Family.SDXL, True)),
    ],
)
def test_the_family_and_inpainting_are_read_from_the_header(
    tmp_path: Path, text_keys: tuple[str, ...], in_channels: int, expected: CheckpointKind
) -> None:
    path = _checkpoint(tmp_path / "model.safetensors", text_keys, in_channels)
    assert detect_checkpoint(path) == expected


def test_files_that_are_not_sd_checkpoints_say_why(tmp_path: Path) -> None:
    lora = tmp_path / "lora.safetensors"
    save_file({"lora_unet_down.alpha": torch.zeros(1)}, str(lora))
    with pytest.raises(CheckpointKindError, match="no Stable Diffusion UNet"):
        detect_checkpoint(lora)
    refiner = _checkpoint(tmp_path / "refiner.safetensors", ("conditioner.embedders.0.model.x",), 4)
    with pytest.raises(CheckpointKindError, match="SDXL refiner"):
        detect_checkpoint(refiner)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(CheckpointKindError, match="not a readable checkpoint"):
        detect_checkpoint(broken)


@pytest.mark.parametrize("inpainting", [False, True])
@pytest.mark.parametrize("family", list(Family))
def test_the_shipped_configs_fit_their_family(
    tmp_path: Path, family: Family, inpainting: bool
) -> None:
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig

    folder = config_folder(CheckpointKind(family, inpainting), tmp_path)
    unet = UNet2DConditionModel.load_config(str(folder / "unet"))
    assert unet["in_channels"] == (9 if inpainting else 4)
    widths = [CLIPTextConfig.from_pretrained(str(folder / "text_encoder")).hidden_size]
    if family is Family.SDXL:
        widths.append(CLIPTextConfig.from_pretrained(str(folder / "text_encoder_2")).hidden_size)
    # The UNet attends to the text encoders' hidden states (SDXL: both, concatenated).
    assert unet["cross_attention_dim"] == sum(widths)
    index = json.loads((folder / "model_index.json").read_text())
    components = [k for k, v in index.items() if isinstance(v, list) and v[0] is not None]
    for component in components:
        assert (folder / component).is_dir(), component


def test_the_shipped_vocabulary_is_clips(tmp_path: Path) -> None:
    from transformers import CLIPTokenizer

    folder = config_folder(CheckpointKind(Family.SD1, False), tmp_path)
    tokenizer = CLIPTokenizer.from_pretrained(str(folder / "tokenizer"))
    assert len(tokenizer) == 49408
    # The ids every CLIP-based SD model was trained with.
    assert tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]


class _RunsCode:
    """Unpickling this calls os.mkdir: what a hostile .ckpt could do with any callable."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def test_a_ckpt_is_read_as_plain_tensors(tmp_path: Path) -> None:
    tensors = {key: torch.zeros(2, 2) for key in (SD1_TEXT,)}
    tensors[UNET_IN] = torch.zeros(320, 9, 3, 3)
    path = tmp_path / "plain.ckpt"
    # As the original trainers saved it: the weights under state_dict, beside plain numbers.
    torch.save({"state_dict": tensors, "global_step": 470000, "epoch": 6}, str(path))
    assert detect_checkpoint(path) == CheckpointKind(Family.SD1, True)


def test_a_ckpt_that_needs_code_is_refused_and_its_code_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    path = tmp_path / "hostile.ckpt"
    tensors = {SD1_TEXT: torch.zeros(2, 2), UNET_IN: torch.zeros(320, 4, 3, 3)}
    torch.save({"state_dict": tensors, "callback": _RunsCode(marker)}, str(path))
    with pytest.raises(UnsafeCheckpointError, match=r"needs code to unpickle \(.*mkdir"):
        detect_checkpoint(path)
    with pytest.raises(ModelLoadError, match="weights_only") as refused:
        load_pipeline(str(path), resolve_placement("cpu", "fp32"), tmp_path)
    assert ".safetensors release" in str(refused.value)
    assert not marker.exists()


def test_a_file_missing_the_tensors_that_fix_its_sizes_says_so(tmp_path: Path) -> None:
    # The right names for detection, but no VAE, text encoder or UNet body to size them from.
    path = _checkpoint(tmp_path / "stub.safetensors", (SD2_TEXT,), 4)
    with pytest.raises(ModelLoadError, match="sd2 checkpoint without the tensors that fix its"):
        load_pipeline(str(path), resolve_placement("cpu", "fp32"), tmp_path)
