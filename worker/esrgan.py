"""The ESRGAN family of upscalers (RRDBNet), loaded from the weight files volunteers have.

Every upscaler the public horde names is an RRDBNet: `RealESRGAN_x4plus` (23 blocks),
`RealESRGAN_x4plus_anime_6B` (6 blocks), `RealESRGAN_x2plus` (pixel-unshuffle by 2, then the x4
network), and `NMKD_Siax` / `4x_AnimeSharp` (the original ESRGAN file layout). The network's
sizes (features, blocks, growth channels, upsampling steps, unshuffle factor) are read from the
shapes in the file, so any RRDBNet file loads, whatever its size.

Two key layouts exist: Real-ESRGAN's (`conv_first`, `body.N.rdbK.convJ`, `conv_body`,
`conv_upK`, `conv_hr`, `conv_last`; often wrapped in `params_ema`) and the original ESRGAN's
(`model.0`, `model.1.sub.N.RDBK.convJ.0`, `model.1.sub.<blocks>`, then the upsampling, HR and
last convolutions at increasing `model.I` indices). The second is renamed into the first.

spandrel would be the library for this, but it requires torchvision, whose PyPI builds link
CUDA torch; with a CPU-only torch build (these machines) an installed torchvision breaks the
import of transformers itself. This module is the architecture alone, nothing else.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional

UPSCALER_SUFFIXES = (".pth", ".pt", ".safetensors")
_OLD_BLOCK = re.compile(r"^model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)$")
_OLD_TOP = re.compile(r"^model\.(\d+)\.(weight|bias)$")
_NEW_BLOCK = re.compile(r"^body\.(\d+)\.")
_NEW_UP = re.compile(r"^conv_up(\d+)\.weight$")


class UpscalerLoadError(ValueError):
    """The file is not an ESRGAN-family upscaler this worker can load; says why."""


class _DenseBlock(nn.Module):
    """Five 3x3 convolutions, each seeing the block input and every earlier output."""

    def __init__(self, features: int, growth: int) -> None:
        super().__init__()
        for index in range(1, 5):
            self.add_module(
                f"conv{index}", nn.Conv2d(features + (index - 1) * growth, growth, 3, 1, 1)
            )
        self.conv5 = nn.Conv2d(features + 4 * growth, features, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [x]
        for index in range(1, 5):
            conv = getattr(self, f"conv{index}")
            outputs.append(functional.leaky_relu(conv(torch.cat(outputs, 1)), 0.2))
        return self.conv5(torch.cat(outputs, 1)) * 0.2 + x


class _ResidualInResidual(nn.Module):
    def __init__(self, features: int, growth: int) -> None:
        super().__init__()
        self.rdb1 = _DenseBlock(features, growth)
        self.rdb2 = _DenseBlock(features, growth)
        self.rdb3 = _DenseBlock(features, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    """ESRGAN's generator. `unshuffle` > 1 folds pixels into channels first (Real-ESRGAN's x2
    and x1 models), so the overall factor is 2**upsamplings / unshuffle."""

    def __init__(
        self,
        *,
        channels: int = 3,
        features: int = 64,
        blocks: int = 23,
        growth: int = 32,
        upsamplings: int = 2,
        unshuffle: int = 1,
    ) -> None:
        super().__init__()
        self.unshuffle = unshuffle
        self.upsamplings = upsamplings
        self.conv_first = nn.Conv2d(channels * unshuffle * unshuffle, features, 3, 1, 1)
        self.body = nn.Sequential(*[_ResidualInResidual(features, growth) for _ in range(blocks)])
        self.conv_body = nn.Conv2d(features, features, 3, 1, 1)
        for index in range(1, upsamplings + 1):
            self.add_module(f"conv_up{index}", nn.Conv2d(features, features, 3, 1, 1))
        self.conv_hr = nn.Conv2d(features, features, 3, 1, 1)
        self.conv_last = nn.Conv2d(features, channels, 3, 1, 1)

    @property
    def scale(self) -> int:
        return 2**self.upsamplings // self.unshuffle

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.unshuffle > 1:
            x = functional.pixel_unshuffle(x, self.unshuffle)
        features = self.conv_first(x)
        features = features + self.conv_body(self.body(features))
        for index in range(1, self.upsamplings + 1):
            conv = getattr(self, f"conv_up{index}")
            upsampled = functional.interpolate(features, scale_factor=2, mode="nearest")
            features = functional.leaky_relu(conv(upsampled), 0.2)
        return self.conv_last(functional.leaky_relu(self.conv_hr(features), 0.2))


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a .pth/.pt (loaded without running pickled code) or .safetensors file."""
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    loaded: Any = torch.load(str(path), map_location="cpu", weights_only=True)
    for wrapper in ("params_ema", "params", "state_dict"):
        if isinstance(loaded, dict) and isinstance(loaded.get(wrapper), dict):
            loaded = loaded[wrapper]
            break
    if not isinstance(loaded, dict):
        raise UpscalerLoadError(f"{path.name}: holds no state dict")
    return {key: value for key, value in loaded.items() if isinstance(value, torch.Tensor)}


def _renamed_from_original(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original ESRGAN keys → Real-ESRGAN keys."""
    renamed: dict[str, torch.Tensor] = {}
    block_indices = {int(m.group(1)) for k in weights if (m := _OLD_BLOCK.match(k))}
    trunk = max(block_indices, default=-1) + 1  # `model.1.sub.<blocks>` is the trunk conv
    top: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in weights.items():
        block = _OLD_BLOCK.match(key)
        if block:
            index, rdb, conv, kind = block.groups()
            renamed[f"body.{index}.rdb{rdb}.conv{conv}.{kind}"] = value
        elif key.startswith(f"model.1.sub.{trunk}."):
            renamed[f"conv_body.{key.rsplit('.', 1)[1]}"] = value
        elif match := _OLD_TOP.match(key):
            top.setdefault(int(match.group(1)), {})[match.group(2)] = value
        else:
            raise UpscalerLoadError(f"unexpected key {key!r} for an ESRGAN model")
    if 0 not in top or len(top) < 3:
        raise UpscalerLoadError("the file lacks ESRGAN's first, HR or last convolution")
    # After model.0 (first conv) come the upsampling convolutions, then HR and last.
    order = sorted(index for index in top if index != 0)
    names = [f"conv_up{n}" for n in range(1, len(order) - 1)] + ["conv_hr", "conv_last"]
    for name, index in zip(names, order, strict=True):
        for kind, value in top[index].items():
            renamed[f"{name}.{kind}"] = value
    for kind, value in top[0].items():
        renamed[f"conv_first.{kind}"] = value
    return renamed


def build_upscaler(weights: dict[str, torch.Tensor], name: str = "upscaler") -> RRDBNet:
    """An RRDBNet sized from the file's shapes, holding its weights (strictly: every tensor used,
    none missing)."""
    if "model.0.weight" in weights:
        weights = _renamed_from_original(weights)
    if "conv_first.weight" not in weights or "conv_last.weight" not in weights:
        raise UpscalerLoadError(
            f"{name}: not an ESRGAN-family (RRDBNet) model; the horde's upscalers"
            " (RealESRGAN_x4plus, RealESRGAN_x2plus, RealESRGAN_x4plus_anime_6B, NMKD_Siax,"
            " 4x_AnimeSharp) all are"
        )
    first = weights["conv_first.weight"]
    channels = weights["conv_last.weight"].shape[0]
    folded = first.shape[1] // channels
    unshuffle = math.isqrt(folded)
    if unshuffle * unshuffle * channels != first.shape[1]:
        raise UpscalerLoadError(f"{name}: first convolution takes {first.shape[1]} channels")
    blocks = len({int(m.group(1)) for key in weights if (m := _NEW_BLOCK.match(key))})
    upsamplings = len([key for key in weights if _NEW_UP.match(key)])
    if blocks == 0 or upsamplings == 0:
        raise UpscalerLoadError(f"{name}: no residual blocks or no upsampling layers found")
    network = RRDBNet(
        channels=channels,
        features=first.shape[0],
        blocks=blocks,
        growth=weights["body.0.rdb1.conv1.weight"].shape[0],
        upsamplings=upsamplings,
        unshuffle=unshuffle,
    )
    try:
        network.load_state_dict(weights, strict=True)
    except RuntimeError as error:
        raise UpscalerLoadError(f"{name}: weights do not fit an RRDBNet: {error}") from None
    return network.eval()


def load_upscaler(path: Path) -> RRDBNet:
    if path.suffix.lower() not in UPSCALER_SUFFIXES:
        raise UpscalerLoadError(
            f"{path.name}: unknown file type; an upscaler is a {', '.join(UPSCALER_SUFFIXES)} file"
        )
    try:
        weights = read_weights(path)
    except (OSError, RuntimeError, ValueError) as error:
        if isinstance(error, UpscalerLoadError):
            raise
        raise UpscalerLoadError(f"{path.name}: cannot read weights: {error}") from None
    return build_upscaler(weights, path.name)
