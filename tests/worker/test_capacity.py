"""Device memory, the largest-size estimate, max_pixels' default and automatic VAE tiling,
with the memory figures monkeypatched (no GPU on the machines this runs on)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from horde_protocol import MAX_SIDE
from horde_worker import capacity
from horde_worker.capacity import (
    GIB,
    Capacity,
    default_max_pixels,
    device_memory,
    estimate_capacity,
    needs_vae_tiling,
)
from horde_worker.config import load_settings
from horde_worker.device import resolve_placement
from horde_worker.models import ModelRegistry
from horde_worker.tiny_model import TINY_MODEL_NAME
from tests.helpers import live_worker


def test_cuda_memory_comes_from_mem_get_info_and_the_device_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked = []

    def mem_get_info(index: int) -> tuple[int, int]:
        asked.append(index)
        return 10 * GIB, 12 * GIB

    monkeypatch.setattr(torch.cuda, "mem_get_info", mem_get_info)
    monkeypatch.setattr(
        torch.cuda, "get_device_properties", lambda index: SimpleNamespace(name=f"GPU {index}")
    )
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    memory = device_memory("cuda:1")
    assert (memory.device, memory.name, memory.kind) == ("cuda:1", "GPU 1", "VRAM")
    assert (memory.total_bytes, memory.free_bytes) == (12 * GIB, 10 * GIB)
    assert device_memory("cuda").device == "cuda:0"  # plain "cuda" is the current device
    assert asked == [1, 0]
    assert memory.describe() == "cuda:1 (GPU 1), VRAM 12.0 GiB total, 10.0 GiB free"


def test_cpu_memory_is_the_machines_available_ram(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capacity, "ram_bytes", lambda: (16 * GIB, 9 * GIB))
    memory = device_memory("cpu")
    assert (memory.name, memory.kind, memory.total_bytes, memory.free_bytes) == (
        "CPU",
        "RAM",
        16 * GIB,
        9 * GIB,
    )


def test_the_estimate_follows_the_documented_formula() -> None:
    # 10 GiB free, SD 1.x at fp16: budget 8 GiB; untiled 400+2600 B/px, tiled 400 B/px after
    # one 512x512 VAE tile.
    estimate = estimate_capacity(10 * GIB, "sd1", 2)
    budget = 10 * GIB * 0.8
    assert estimate.untiled_pixels == int(budget / 3000)
    assert estimate.tiled_pixels == int((budget - 2600 * 512 * 512) / 400)
    # fp32 doubles every byte; SDXL's UNet costs more.
    assert estimate_capacity(10 * GIB, "sd1", 4).untiled_pixels == int(budget / 6000)
    assert estimate_capacity(10 * GIB, "sdxl", 2).tiled_pixels < estimate.tiled_pixels


@pytest.mark.parametrize(
    ("free_gib", "device", "expected"),
    [
        (0.5, "cuda:0", 512 * 512),  # never below 512x512
        (4, "cuda:0", int((4 * GIB * 0.8 - 2600 * 512 * 512) / 400) // 4096 * 4096),
        (80, "cuda:0", MAX_SIDE * MAX_SIDE),  # never above the horde's largest side
        (64, "cpu", 512 * 512),  # on the CPU time is the limit
    ],
)
def test_default_max_pixels_is_on_the_64_grid_and_clamped(
    free_gib: float, device: str, expected: int
) -> None:
    value = default_max_pixels(estimate_capacity(int(free_gib * GIB), "sd1", 2), device)
    assert value == expected and value % (64 * 64) == 0


def test_auto_vae_tiling_switches_on_only_when_the_size_needs_it() -> None:
    fits = Capacity("sd1", 2, untiled_pixels=1024 * 1024, tiled_pixels=2048 * 2048)
    assert not needs_vae_tiling("auto", 1024 * 1024, fits)
    assert needs_vae_tiling("auto", 1024 * 1024 + 4096, fits)
    assert needs_vae_tiling("on", 64 * 64, fits)
    assert not needs_vae_tiling("off", 2048 * 2048, fits)


def _registry(
    monkeypatch: pytest.MonkeyPatch, free_bytes: int, **settings: object
) -> ModelRegistry:
    monkeypatch.setattr(capacity, "ram_bytes", lambda: (64 * GIB, free_bytes))
    loaded = load_settings(
        models={TINY_MODEL_NAME: "tiny"}, cache_dir=live_worker.test_cache_dir(), **settings
    )
    registry = ModelRegistry(loaded, resolve_placement("cpu", "fp32"))
    registry.load_all()
    return registry


def _vae_tiled(registry: ModelRegistry) -> bool:
    model = registry.get(TINY_MODEL_NAME)
    assert model is not None
    return bool(model.pipeline.vae.use_tiling)


def test_the_loaded_worker_reports_its_size_and_tiles_only_when_memory_is_short(
    monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path
) -> None:
    roomy = _registry(monkeypatch, 8 * GIB)
    assert roomy.settings.max_pixels == 512 * 512  # estimated: the CPU default
    assert not _vae_tiled(roomy)
    assert roomy.size_report.startswith("device cpu (CPU), RAM 64.0 GiB total, 8.0 GiB free;")
    assert "max_pixels=262144 (estimated, about 512x512); VAE tiling off (auto)" in (
        roomy.size_report
    )
    # 40 MB free: the tiny model's untiled 512x512 decode no longer fits, so auto tiles.
    short = _registry(monkeypatch, 40 * 1024 * 1024)
    assert short.capacity.untiled_pixels < 512 * 512
    assert _vae_tiled(short)
    assert "VAE tiling on (auto)" in short.size_report
    # A volunteer's own max_pixels is kept; `off` is obeyed even when short.
    chosen = _registry(monkeypatch, 40 * 1024 * 1024, max_pixels=64 * 64, vae_tiling="off")
    assert chosen.settings.max_pixels == 64 * 64 and not _vae_tiled(chosen)
    assert "max_pixels=4096 (set, about 64x64)" in chosen.size_report
