"""The tiny diffusers pipeline written back as an original (LDM) single-file SD 1.x checkpoint,
the layout single `.safetensors` files on the web have. Only what the tiny model has: down/up
blocks with resnets, cross-attention transformers, down/upsamplers, a VAE without mid
attention, and the CLIP text encoder."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}


def _resnet(rest: str) -> str:
    layer, _, param = rest.partition(".")
    return f"{_RESNET[layer]}.{param}"


def _unet_key(key: str, layers: int, blocks: int, attention_up: set[int]) -> str:
    fixed = {
        "time_embedding.linear_1": "time_embed.0",
        "time_embedding.linear_2": "time_embed.2",
        "conv_in": "input_blocks.0.0",
        "conv_norm_out": "out.0",
        "conv_out": "out.2",
    }
    module, _, param = key.rpartition(".")
    if module in fixed:
        return f"{fixed[module]}.{param}"
    if match := re.match(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
        block, kind, layer, rest = int(match[1]), match[2], int(match[3]), match[4]
        index = 1 + block * (layers + 1) + layer
        return (
            f"input_blocks.{index}.0.{_resnet(rest)}"
            if kind == "resnets"
            else (f"input_blocks.{index}.1.{rest}")
        )
    if match := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
        index = 1 + int(match[1]) * (layers + 1) + layers
        return f"input_blocks.{index}.0.op.{match[2]}"
    if match := re.match(r"mid_block\.(resnets|attentions)\.(\d+)\.(.*)", key):
        kind, layer, rest = match[1], int(match[2]), match[3]
        if kind == "attentions":
            return f"middle_block.1.{rest}"
        return f"middle_block.{0 if layer == 0 else 2}.{_resnet(rest)}"
    if match := re.match(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
        block, kind, layer, rest = int(match[1]), match[2], int(match[3]), match[4]
        index = block * (layers + 1) + layer
        return (
            f"output_blocks.{index}.0.{_resnet(rest)}"
            if kind == "resnets"
            else (f"output_blocks.{index}.1.{rest}")
        )
    if match := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key):
        block = int(match[1])
        index = block * (layers + 1) + layers
        slot = 2 if block in attention_up else 1
        return f"output_blocks.{index}.{slot}.conv.{match[2]}"
    raise KeyError(f"no original name known for UNet key {key}")


def _vae_key(key: str, blocks: int) -> str:
    renames = [
        (r"^encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.", r"encoder.down.\1.block.\2."),
        (r"^encoder\.down_blocks\.(\d+)\.downsamplers\.0\.", r"encoder.down.\1.downsample."),
        (r"^(encoder|decoder)\.mid_block\.resnets\.0\.", r"\1.mid.block_1."),
        (r"^(encoder|decoder)\.mid_block\.resnets\.1\.", r"\1.mid.block_2."),
        (r"^(encoder|decoder)\.conv_norm_out\.", r"\1.norm_out."),
    ]
    for pattern, replacement in renames:
        key = re.sub(pattern, replacement, key)
    if match := re.match(r"decoder\.up_blocks\.(\d+)\.(resnets\.(\d+)|upsamplers\.0)\.(.*)", key):
        block = blocks - 1 - int(match[1])  # the original counts up blocks from the bottom
        inner = f"block.{match[3]}" if match[3] is not None else "upsample"
        key = f"decoder.up.{block}.{inner}.{match[4]}"
    return key.replace(".conv_shortcut.", ".nin_shortcut.")


def write_original_checkpoint(pipeline: Any, path: Path) -> Path:
    """Save `pipeline` (the tiny SD 1.x pipeline) as one original-layout .safetensors file."""
    from safetensors.torch import save_file

    unet_config = pipeline.unet.config
    layers = unet_config.layers_per_block
    blocks = len(unet_config.block_out_channels)
    attention_up = {
        index for index, kind in enumerate(unet_config.up_block_types) if "CrossAttn" in kind
    }
    tensors = {}
    for key, value in pipeline.unet.state_dict().items():
        tensors[f"model.diffusion_model.{_unet_key(key, layers, blocks, attention_up)}"] = value
    vae_blocks = len(pipeline.vae.config.block_out_channels)
    for key, value in pipeline.vae.state_dict().items():
        tensors[f"first_stage_model.{_vae_key(key, vae_blocks)}"] = value
    for key, value in pipeline.text_encoder.state_dict().items():
        inner = key if key.startswith("text_model.") else f"text_model.{key}"
        tensors[f"cond_stage_model.transformer.{inner}"] = value
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return path
