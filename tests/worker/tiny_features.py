"""Tiny random-weight model files of the real architectures, in the real file layouts.

Built from the layouts' key names and shapes (not from the worker's own classes), so loading
them proves the worker reads the files volunteers really have: Real-ESRGAN `.pth`
(`params_ema`), original ESRGAN `.pth` (`model.N`), a diffusers ControlNet folder, a kohya LoRA
`.safetensors` (as CivitAI distributes them) and an A1111 textual inversion `.safetensors`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file


def _conv(generator: torch.Generator, out_ch: int, in_ch: int) -> dict[str, torch.Tensor]:
    weight = torch.randn(out_ch, in_ch, 3, 3, generator=generator) * (1.0 / (in_ch * 9) ** 0.5)
    return {"weight": weight, "bias": torch.randn(out_ch, generator=generator) * 0.01}


def realesrgan_state(
    *, features: int = 8, blocks: int = 1, growth: int = 4, unshuffle: int = 1, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Real-ESRGAN's key layout: conv_first, body.N.rdbK.convJ, conv_body, conv_up1/2, conv_hr,
    conv_last (x4 network; unshuffle 2 makes the x2plus variant)."""
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}

    def put(name: str, out_ch: int, in_ch: int) -> None:
        for kind, tensor in _conv(generator, out_ch, in_ch).items():
            state[f"{name}.{kind}"] = tensor

    put("conv_first", features, 3 * unshuffle * unshuffle)
    for block in range(blocks):
        for rdb in (1, 2, 3):
            for conv in range(1, 5):
                put(f"body.{block}.rdb{rdb}.conv{conv}", growth, features + (conv - 1) * growth)
            put(f"body.{block}.rdb{rdb}.conv5", features, features + 4 * growth)
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        put(name, features, features)
    put("conv_last", 3, features)
    return state


def original_esrgan_state(**sizes: Any) -> dict[str, torch.Tensor]:
    """The original ESRGAN layout (NMKD_Siax, 4x_AnimeSharp): model.0, model.1.sub.N.RDBK.
    convJ.0, model.1.sub.<blocks>, model.3 and model.6 (upsampling), model.8, model.10."""
    state = realesrgan_state(**sizes)
    blocks = len({key.split(".")[1] for key in state if key.startswith("body.")})
    renamed = {}
    top = {
        "conv_first": "model.0",
        "conv_body": f"model.1.sub.{blocks}",
        "conv_up1": "model.3",
        "conv_up2": "model.6",
        "conv_hr": "model.8",
        "conv_last": "model.10",
    }
    for key, value in state.items():
        name, kind = key.rsplit(".", 1)
        if name in top:
            renamed[f"{top[name]}.{kind}"] = value
        else:
            _, block, rdb, conv = name.split(".")
            renamed[f"model.1.sub.{block}.RDB{rdb[-1]}.{conv}.0.{kind}"] = value
    return renamed


def write_realesrgan(path: Path, **sizes: Any) -> Path:
    torch.save({"params_ema": realesrgan_state(**sizes)}, path)
    return path


def write_original_esrgan(path: Path, **sizes: Any) -> Path:
    torch.save(original_esrgan_state(**sizes), path)
    return path


def write_controlnet(folder: Path, unet: Any, seed: int = 0) -> Path:
    """A diffusers ControlNet folder for the tiny UNet. ControlNet starts with zero output
    convolutions (it changes nothing until trained): random weights make it act."""
    from diffusers import ControlNetModel

    torch.manual_seed(seed)
    controlnet = ControlNetModel.from_unet(unet, conditioning_channels=3)
    with torch.no_grad():
        for parameter in controlnet.parameters():
            parameter.copy_(torch.randn_like(parameter) * 0.05)
    controlnet.save_pretrained(str(folder))
    return folder


def write_kohya_lora(path: Path, pipeline: Any, rank: int = 4, seed: int = 0) -> Path:
    """A kohya/A1111 LoRA: `lora_unet_<module path with _>` and
    `lora_te_text_model_encoder_layers_N_self_attn_X_proj` with lora_down/lora_up/alpha."""
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}

    def add(key: str, in_features: int, out_features: int) -> None:
        state[f"{key}.lora_down.weight"] = torch.randn(rank, in_features, generator=generator)
        state[f"{key}.lora_up.weight"] = torch.randn(out_features, rank, generator=generator)
        state[f"{key}.alpha"] = torch.tensor(float(rank))

    for name, module in pipeline.unet.named_modules():
        if name.endswith(("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn2.to_q", "attn2.to_v")):
            add("lora_unet_" + name.replace(".", "_"), module.in_features, module.out_features)
    layers = pipeline.text_encoder.config.num_hidden_layers
    hidden = pipeline.text_encoder.config.hidden_size
    for layer in range(layers):
        for projection in ("q_proj", "k_proj", "v_proj", "out_proj"):
            add(f"lora_te_text_model_encoder_layers_{layer}_self_attn_{projection}", hidden, hidden)
    save_file(state, str(path))
    return path


def write_textual_inversion(path: Path, hidden: int, vectors: int = 2, seed: int = 0) -> Path:
    """An A1111 embedding in safetensors form: `emb_params` of shape (vectors, hidden)."""
    generator = torch.Generator().manual_seed(seed)
    save_file({"emb_params": torch.randn(vectors, hidden, generator=generator)}, str(path))
    return path
