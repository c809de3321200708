"""The sizes of a single-file checkpoint's modules, read from its tensor shapes.

diffusers converts an original (LDM/SGM) checkpoint into modules built from diffusers configs,
so the configs must describe the file's architecture exactly. The family's shipped configs
describe the released models; this module reads from the file what its tensors fix — channel
widths, blocks, layers, attention placement and depth, the text encoders' widths and depths —
and the shipped config keeps what the tensors cannot tell (norm groups, sample size, activation,
the scheduler). For a released model the values read equal the shipped ones (tested at full
size on the meta device); for a fine-tune with another depth, or the tests' tiny files, they are
what the file holds. Attention heads are not stored in a tensor: the original configs give them
as a rule — SD 1.x 8 heads per block, SD 2.x and SDXL 64 channels per head (and every CLIP text
encoder 64 channels per head) — and the rule is applied to the widths read.
"""

from __future__ import annotations

import re
from typing import Any

from horde_worker.checkpoint_kind import CheckpointKind, Family

Shapes = dict[str, tuple[int, ...]]
UNET = "model.diffusion_model."
VAE = "first_stage_model."
_HEAD_WIDTH = 64
# diffusers drops the last of OpenCLIP ViT-H's 24 blocks (SD 2 conditions on the penultimate
# layer) and ignores exactly this block's tensors when converting.
_SD2_UNUSED_BLOCK = "cond_stage_model.model.transformer.resblocks.23."


def _indices(shapes: Shapes, prefix: str) -> set[int]:
    """The numbers N of the `prefix`N. sub-modules present."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return {int(match[1]) for key in shapes if (match := pattern.match(key))}


def _heads(width: int) -> int:
    return max(1, width // _HEAD_WIDTH)


def unet_config(shapes: Shapes, family: Family, pooled_width: int | None) -> dict[str, Any]:
    inputs = _indices(shapes, f"{UNET}input_blocks.")
    downsamplers = [i for i in inputs if f"{UNET}input_blocks.{i}.0.op.weight" in shapes]
    blocks = len(downsamplers) + 1
    layers = (max(inputs) + 1) // blocks - 1
    widths, down, depths = [], [], []
    for block in range(blocks):
        first = f"{UNET}input_blocks.{1 + block * (layers + 1)}."
        widths.append(shapes[f"{first}0.in_layers.2.weight"][0])
        attention = f"{first}1.proj_in.weight" in shapes
        down.append("CrossAttnDownBlock2D" if attention else "DownBlock2D")
        depths.append(len(_indices(shapes, f"{first}1.transformer_blocks.")) or 1)
    up = [
        "CrossAttnUpBlock2D"
        if f"{UNET}output_blocks.{block * (layers + 1)}.1.proj_in.weight" in shapes
        else "UpBlock2D"
        for block in range(blocks)
    ]
    attended = next(k for k in shapes if k.startswith(UNET) and k.endswith("attn2.to_k.weight"))
    proj_in = next(k for k in shapes if k.startswith(UNET) and k.endswith(".proj_in.weight"))
    config: dict[str, Any] = {
        "in_channels": shapes[f"{UNET}input_blocks.0.0.weight"][1],
        "out_channels": shapes[f"{UNET}out.2.weight"][0],
        "block_out_channels": widths,
        "layers_per_block": layers,
        "down_block_types": down,
        "up_block_types": up,
        "cross_attention_dim": shapes[attended][1],
        "use_linear_projection": len(shapes[proj_in]) == 2,
        "transformer_layers_per_block": depths if any(d != 1 for d in depths) else 1,
    }
    if family is not Family.SD1:  # SD 1.x keeps its 8 heads per block (the shipped value)
        config["attention_head_dim"] = [_heads(width) for width in widths]
    label = f"{UNET}label_emb.0.0.weight"
    if label in shapes and pooled_width is not None:
        # SDXL adds the pooled text embedding and 6 size/crop numbers, each embedded alike.
        combined = shapes[label][1]
        config["projection_class_embeddings_input_dim"] = combined
        config["addition_time_embed_dim"] = (combined - pooled_width) // 6
    return config


def vae_config(shapes: Shapes) -> dict[str, Any]:
    blocks = sorted(_indices(shapes, f"{VAE}encoder.down."))
    return {
        "block_out_channels": [
            shapes[f"{VAE}encoder.down.{b}.block.0.conv1.weight"][0] for b in blocks
        ],
        "layers_per_block": len(_indices(shapes, f"{VAE}encoder.down.0.block.")),
        "latent_channels": shapes[f"{VAE}decoder.conv_in.weight"][1],
        "down_block_types": ["DownEncoderBlock2D"] * len(blocks),
        "up_block_types": ["UpDecoderBlock2D"] * len(blocks),
        "mid_block_add_attention": f"{VAE}encoder.mid.attn_1.q.weight" in shapes,
    }


def clip_config(shapes: Shapes, prefix: str) -> dict[str, Any]:
    """OpenAI CLIP in the transformers layout (SD 1.x, SDXL's first encoder)."""
    if f"{prefix}text_model.embeddings.token_embedding.weight" in shapes:
        prefix = f"{prefix}text_model."  # older files lack the text_model level
    width = shapes[f"{prefix}embeddings.token_embedding.weight"][1]
    return {
        "hidden_size": width,
        "intermediate_size": shapes[f"{prefix}encoder.layers.0.mlp.fc1.weight"][0],
        "num_hidden_layers": len(_indices(shapes, f"{prefix}encoder.layers.")),
        "num_attention_heads": _heads(width),
        "max_position_embeddings": shapes[f"{prefix}embeddings.position_embedding.weight"][0],
    }


def open_clip_config(shapes: Shapes, prefix: str) -> dict[str, Any]:
    """OpenCLIP in its own layout (SD 2.x, SDXL's second encoder)."""
    width = shapes[f"{prefix}token_embedding.weight"][1]
    layers = len(_indices(shapes, f"{prefix}transformer.resblocks."))
    if prefix == "cond_stage_model.model." and any(k.startswith(_SD2_UNUSED_BLOCK) for k in shapes):
        layers -= 1
    config = {
        "hidden_size": width,
        "intermediate_size": shapes[f"{prefix}transformer.resblocks.0.mlp.c_fc.weight"][0],
        "num_hidden_layers": layers,
        "num_attention_heads": _heads(width),
        "max_position_embeddings": shapes[f"{prefix}positional_embedding"][0],
    }
    projection = shapes.get(f"{prefix}text_projection")
    if projection is not None and prefix.startswith("conditioner."):
        config["projection_dim"] = projection[1]
    return config


def architecture(shapes: Shapes, kind: CheckpointKind) -> dict[str, dict[str, Any]]:
    """The config values each component's folder takes from the file, by component folder."""
    if kind.family is Family.SD1:
        texts = {"text_encoder": clip_config(shapes, "cond_stage_model.transformer.")}
    elif kind.family is Family.SD2:
        texts = {"text_encoder": open_clip_config(shapes, "cond_stage_model.model.")}
    else:
        texts = {
            "text_encoder": clip_config(shapes, "conditioner.embedders.0.transformer."),
            "text_encoder_2": open_clip_config(shapes, "conditioner.embedders.1.model."),
        }
    pooled = texts.get("text_encoder_2", {}).get("projection_dim")
    return {
        "unet": unet_config(shapes, kind.family, pooled),
        "vae": vae_config(shapes),
        **texts,
    }
