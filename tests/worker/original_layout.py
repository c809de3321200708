"""Diffusers modules written back as an original single-file checkpoint — the LDM (SD 1.x/2.x)
and SGM (SDXL) key layouts single `.safetensors`/`.ckpt` files on the web have: the UNet under
`model.diffusion_model.`, the VAE under `first_stage_model.`, OpenAI CLIP in the transformers
layout (`cond_stage_model.transformer.`, SDXL `conditioner.embedders.0.transformer.`) and
OpenCLIP in its own layout (`cond_stage_model.model.`, SDXL `conditioner.embedders.1.model.`:
fused q/k/v `in_proj`, `resblocks`, `ln_final`, a transposed `text_projection`).

This is the inverse of the mapping diffusers' single-file loader applies
(diffusers/loaders/single_file_utils.py: `convert_ldm_unet_checkpoint`,
`convert_ldm_vae_checkpoint`, `convert_open_clip_checkpoint`), written for the tests from the
original layouts; the loader under test maps it forward again."""

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
    if match := re.match(r"add_embedding\.linear_(1|2)\.(.*)", key):
        return f"label_emb.0.{0 if match[1] == '1' else 2}.{match[2]}"
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


_VAE_ATTENTION = {
    "group_norm": "norm",
    "to_q": "q",
    "to_k": "k",
    "to_v": "v",
    "to_out.0": "proj_out",
}


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
    if match := re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.*)\.(weight|bias)$", key):
        return f"{match[1]}.mid.attn_1.{_VAE_ATTENTION[match[2]]}.{match[3]}"
    if match := re.match(r"decoder\.up_blocks\.(\d+)\.(resnets\.(\d+)|upsamplers\.0)\.(.*)", key):
        block = blocks - 1 - int(match[1])  # the original counts up blocks from the bottom
        inner = f"block.{match[3]}" if match[3] is not None else "upsample"
        key = f"decoder.up.{block}.{inner}.{match[4]}"
    return key.replace(".conv_shortcut.", ".nin_shortcut.")


def _vae_value(original_key: str, value: Any) -> Any:
    # The original attention projections are 1x1 convolutions; diffusers' are linear layers.
    if ".mid.attn_1." in original_key and original_key.endswith("weight") and value.ndim == 2:
        return value.reshape(*value.shape, 1, 1)
    return value


_OPEN_CLIP_LAYER = {
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
    "self_attn.out_proj": "attn.out_proj",
}


def _clip_tensors(encoder: Any, prefix: str) -> dict[str, Any]:
    """OpenAI CLIP: the transformers keys, always under `text_model.`."""
    tensors = {}
    for key, value in encoder.state_dict().items():
        if key.startswith("text_projection."):
            continue
        inner = key if key.startswith("text_model.") else f"text_model.{key}"
        tensors[f"{prefix}{inner}"] = value
    return tensors


def _open_clip_tensors(encoder: Any, prefix: str) -> dict[str, Any]:
    import torch

    state = {k.removeprefix("text_model."): v for k, v in encoder.state_dict().items()}
    tensors = {
        f"{prefix}token_embedding.weight": state["embeddings.token_embedding.weight"],
        f"{prefix}positional_embedding": state["embeddings.position_embedding.weight"],
        f"{prefix}ln_final.weight": state["final_layer_norm.weight"],
        f"{prefix}ln_final.bias": state["final_layer_norm.bias"],
    }
    if "text_projection.weight" in state:
        tensors[f"{prefix}text_projection"] = state["text_projection.weight"].T
    else:  # SD 2's file carries one too (unused by the UNet)
        width = state["embeddings.token_embedding.weight"].shape[1]
        device = state["embeddings.token_embedding.weight"].device
        tensors[f"{prefix}text_projection"] = torch.zeros(width, width, device=device)
    layers = {int(k.split(".")[2]) for k in state if k.startswith("encoder.layers.")}
    for index in sorted(layers):
        source = f"encoder.layers.{index}."
        target = f"{prefix}transformer.resblocks.{index}."
        for kind in ("weight", "bias"):
            tensors[f"{target}attn.in_proj_{kind}"] = torch.cat(
                [state[f"{source}self_attn.{p}_proj.{kind}"] for p in "qkv"]
            )
            for diffusers_name, original in _OPEN_CLIP_LAYER.items():
                tensors[f"{target}{original}.{kind}"] = state[f"{source}{diffusers_name}.{kind}"]
    return tensors


def original_state_dict(components: dict[str, Any], family: str) -> dict[str, Any]:
    """The original single-file tensors of `components` (unet, vae, text_encoder and, for
    SDXL, text_encoder_2) in `family`'s layout (sd1, sd2 or sdxl)."""
    unet, vae = components["unet"], components["vae"]
    layers = unet.config.layers_per_block
    blocks = len(unet.config.block_out_channels)
    attention_up = {
        index for index, kind in enumerate(unet.config.up_block_types) if "CrossAttn" in kind
    }
    tensors = {}
    for key, value in unet.state_dict().items():
        tensors[f"model.diffusion_model.{_unet_key(key, layers, blocks, attention_up)}"] = value
    vae_blocks = len(vae.config.block_out_channels)
    for key, value in vae.state_dict().items():
        original = f"first_stage_model.{_vae_key(key, vae_blocks)}"
        tensors[original] = _vae_value(original, value)
    if family == "sd1":
        tensors.update(_clip_tensors(components["text_encoder"], "cond_stage_model.transformer."))
    elif family == "sd2":
        tensors.update(_open_clip_tensors(components["text_encoder"], "cond_stage_model.model."))
    else:
        tensors.update(
            _clip_tensors(components["text_encoder"], "conditioner.embedders.0.transformer.")
        )
        tensors.update(
            _open_clip_tensors(components["text_encoder_2"], "conditioner.embedders.1.model.")
        )
    return tensors


def write_original_checkpoint(
    components: Any,
    path: Path,
    family: str = "sd1",
    metadata: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Save `components` (a dict as `original_state_dict` takes, or an SD 1.x pipeline) as one
    original-layout file: `.safetensors` (with `metadata`), or a pickled `.ckpt` holding
    `{"state_dict": ..., "global_step": 0}` as the original trainers saved it."""
    import torch
    from safetensors.torch import save_file

    if not isinstance(components, dict):
        components = components.components
    tensors = {k: v.contiguous() for k, v in original_state_dict(components, family).items()}
    tensors.update(extra or {})
    if path.suffix == ".ckpt":
        torch.save({"state_dict": tensors, "global_step": 0}, str(path))
    else:
        save_file(tensors, str(path), metadata=metadata)
    return path
