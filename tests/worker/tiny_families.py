"""Diffusers modules of each single-file family, built from the configs the worker ships:
full size on the meta device (shapes only, no memory), or tiny with random weights.

The tiny ones change only what a file's tensors fix (worker/checkpoint_arch.py reads it back):
two UNet blocks of 32 and 64 channels, one layer each, a 4-block VAE of 32 channels (latents
1/8 of the image side, as in the real ones), two-layer text encoders 32 wide (SDXL's second one
48: diffusers tells SDXL's two encoders apart by their width, 768 and 1280). What a file cannot
tell stays the shipped value, and the tiny sizes respect it: 32 norm groups, CLIP's 49 408-token
vocabulary and 77 positions, SD 1.x's 8 heads, 64 channels per head elsewhere (here 1 head).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from horde_worker.checkpoint_kind import CheckpointKind, Family
from horde_worker.single_file import config_folder

TEXT_WIDTH = 32
TEXT_2_WIDTH = POOLED_WIDTH = 48
TIME_WIDTH = 8


def _unet_overrides(family: Family) -> dict[str, Any]:
    overrides: dict[str, Any] = {
        "block_out_channels": [32, 64],
        "layers_per_block": 1,
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
        "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
        "cross_attention_dim": TEXT_WIDTH,
    }
    if family is not Family.SD1:
        overrides["attention_head_dim"] = [1, 1]
    if family is Family.SDXL:
        overrides.update(
            cross_attention_dim=TEXT_WIDTH + TEXT_2_WIDTH,  # both encoders' states, concatenated
            transformer_layers_per_block=[1, 2],
            addition_time_embed_dim=TIME_WIDTH,
            projection_class_embeddings_input_dim=POOLED_WIDTH + 6 * TIME_WIDTH,
        )
    return overrides


_VAE = {
    "block_out_channels": [32, 32, 32, 32],
    "layers_per_block": 1,
}
_TEXT = {
    "hidden_size": TEXT_WIDTH,
    "intermediate_size": 37,
    "num_hidden_layers": 2,
    "num_attention_heads": 1,
}


def _read(folder: Path, name: str) -> dict[str, Any]:
    return json.loads((folder / name).read_text(encoding="utf-8"))


def build_components(
    kind: CheckpointKind, cache_dir: Path, *, tiny: bool, seed: int = 0
) -> dict[str, Any]:
    """unet, vae, text_encoder (and text_encoder_2) of `kind`: tiny on the CPU, or full size
    on the meta device."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    folder = config_folder(kind, cache_dir)
    unet_config = _read(folder, "unet/config.json") | (_unet_overrides(kind.family) if tiny else {})
    vae_config = _read(folder, "vae/config.json") | (_VAE if tiny else {})
    text_folders = ["text_encoder"] + (["text_encoder_2"] if kind.family is Family.SDXL else [])
    device = torch.device("cpu" if tiny else "meta")
    with torch.random.fork_rng(devices=[]), device:
        torch.manual_seed(seed)
        components: dict[str, Any] = {
            "unet": UNet2DConditionModel.from_config(unet_config),
            "vae": AutoencoderKL.from_config(vae_config),
        }
        for name in text_folders:
            config = CLIPTextConfig.from_pretrained(str(folder / name))
            if tiny:
                for key, value in _TEXT.items():
                    setattr(config, key, value)
                if name == "text_encoder_2":
                    config.hidden_size = TEXT_2_WIDTH
                config.projection_dim = POOLED_WIDTH
            model_class = CLIPTextModelWithProjection if name == "text_encoder_2" else CLIPTextModel
            components[name] = model_class(config).eval()
    return components
