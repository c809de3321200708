"""How large an image this machine can serve: the device's memory and a stated estimate.

The estimate is deliberately simple and conservative, not a measurement of any one card:

    budget        = free memory after the models are loaded * USABLE_FRACTION
    untiled limit = budget / (unet_bpp + vae_bpp)                       pixels (width*height)
    tiled limit   = (budget - vae_bpp * vae_tile_pixels) / unet_bpp     pixels

`unet_bpp` and `vae_bpp` are peak activation bytes per output pixel at 2-byte precision (fp16,
bf16), doubled at fp32. They are rounded-up figures for diffusers with scaled-dot-product
attention, for SD's full width (scaled by the VAE's widest block / 512 for narrower test
models): the untiled VAE decode dominates at large sizes (its full-resolution 128-channel
blocks), which is why VAE tiling (decoding a bounded tile at a time) lifts the limit so far.

`max_pixels`, when the volunteer does not set it, is the tiled limit rounded down to a multiple
of 64*64 and clamped to [512*512, MAX_SIDE*MAX_SIDE]: 512*512 is the size every horde request
defaults to, so a worker offers at least that (lower `max_pixels` by hand if it runs out). On
the CPU the default is 512*512: there time, not memory, is the limit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from horde_protocol import MAX_SIDE

# Headroom for the CUDA context, allocator fragmentation, the scheduler and the encoded result.
USABLE_FRACTION = 0.8
PIXEL_STEP = 64 * 64
MIN_DEFAULT_PIXELS = 512 * 512
GIB = 1024**3

Family = Literal["sd1", "sdxl"]


@dataclass(frozen=True)
class FamilyCost:
    unet_bytes_per_pixel: float  # at 2 bytes per value
    vae_bytes_per_pixel: float  # untiled decode, at 2 bytes per value
    vae_tile_side: int  # diffusers' AutoencoderKL tile (its sample_size)


# Stated estimates (see the module docstring); SD 2.x shares SD 1.x's VAE and a UNet of the
# same size, so it is counted as sd1.
FAMILY_COSTS: dict[Family, FamilyCost] = {
    "sd1": FamilyCost(unet_bytes_per_pixel=400, vae_bytes_per_pixel=2600, vae_tile_side=512),
    "sdxl": FamilyCost(unet_bytes_per_pixel=600, vae_bytes_per_pixel=2600, vae_tile_side=1024),
}


@dataclass(frozen=True)
class DeviceMemory:
    device: str  # "cuda:0", "mps", "cpu"
    name: str  # the GPU's name, or "CPU"
    kind: str  # "VRAM" or "RAM"
    total_bytes: int
    free_bytes: int

    def describe(self) -> str:
        return (
            f"{self.device} ({self.name}), {self.kind} {self.total_bytes / GIB:.1f} GiB total,"
            f" {self.free_bytes / GIB:.1f} GiB free"
        )


@dataclass(frozen=True)
class Capacity:
    family: Family
    bytes_per_value: int
    untiled_pixels: int  # largest width*height decoded without VAE tiling
    tiled_pixels: int  # largest width*height with VAE tiling


def device_memory(device: str) -> DeviceMemory:
    """Total and free memory of `device` ("cuda[:N]", "mps" or "cpu"): VRAM on CUDA, the
    machine's RAM elsewhere (MPS shares it)."""
    if device.startswith("cuda"):
        import torch

        index = torch.device(device).index
        index = torch.cuda.current_device() if index is None else index
        free, total = torch.cuda.mem_get_info(index)
        name = torch.cuda.get_device_properties(index).name
        return DeviceMemory(f"cuda:{index}", name, "VRAM", int(total), int(free))
    total, available = ram_bytes()
    return DeviceMemory(device, "CPU" if device == "cpu" else "Apple GPU", "RAM", total, available)


def ram_bytes() -> tuple[int, int]:
    """(total, available) RAM. Linux's MemAvailable counts the page cache the kernel gives
    back, which "free" pages do not; elsewhere sysconf's free pages are the best there is."""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        fields = {}
        for line in meminfo.read_text().splitlines():
            key, _, rest = line.partition(":")
            fields[key] = int(rest.split()[0]) * 1024
        if "MemTotal" in fields and "MemAvailable" in fields:
            return fields["MemTotal"], fields["MemAvailable"]
    page = os.sysconf("SC_PAGE_SIZE")
    return os.sysconf("SC_PHYS_PAGES") * page, os.sysconf("SC_AVPHYS_PAGES") * page


def family_of(pipeline: Any) -> Family:
    return "sdxl" if "XL" in type(pipeline).__name__ else "sd1"


def width_of(pipeline: Any) -> float:
    """The VAE's widest block relative to SD's 512 channels: activations grow with it, so a
    small test model (worker/tiny_model.py) is not estimated as if it were a full one."""
    channels = getattr(
        getattr(getattr(pipeline, "vae", None), "config", None), "block_out_channels", None
    )
    if not channels:
        return 1.0
    return min(1.0, max(channels) / 512)


def estimate_capacity(
    free_bytes: int, family: Family, bytes_per_value: int, width: float = 1.0
) -> Capacity:
    cost = FAMILY_COSTS[family]
    scale = bytes_per_value / 2 * width
    unet = cost.unet_bytes_per_pixel * scale
    vae = cost.vae_bytes_per_pixel * scale
    budget = max(0.0, free_bytes * USABLE_FRACTION)
    untiled = int(budget / (unet + vae))
    tiled = int(max(0.0, budget - vae * cost.vae_tile_side**2) / unet)
    return Capacity(family, bytes_per_value, untiled, max(untiled, tiled))


def default_max_pixels(capacity: Capacity, device: str) -> int:
    """The tiled limit on the 64*64 grid, within [512*512, MAX_SIDE*MAX_SIDE]; on the CPU
    512*512 at most, as time, not memory, is its limit (minutes per 512*512 image: a larger
    job would outlive its ttl)."""
    on_grid = capacity.tiled_pixels // PIXEL_STEP * PIXEL_STEP
    largest = MIN_DEFAULT_PIXELS if device == "cpu" else MAX_SIDE * MAX_SIDE
    return min(largest, max(MIN_DEFAULT_PIXELS, on_grid))


def needs_vae_tiling(setting: str, max_pixels: int, capacity: Capacity) -> bool:
    """`auto`: tiling when the largest size served would not decode untiled. diffusers only
    tiles an image larger than one tile, so small jobs keep the faster plain decode."""
    if setting == "auto":
        return max_pixels > capacity.untiled_pixels
    return setting == "on"


def side(pixels: int) -> str:
    """A square size with about `pixels` pixels, on the 64 grid, for people to read."""
    edge = int(pixels**0.5) // 64 * 64
    return f"{edge}x{edge}"
