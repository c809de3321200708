"""Device and dtype choice, and the CUDA-only speed settings.

No GPU exists on the machines this project is developed on, so the CUDA branches are kept small
and follow the documented diffusers/PyTorch recipes; docs/worker.md describes what to expect.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

_DTYPES = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32"}


@dataclass(frozen=True)
class Placement:
    device: str
    dtype_name: str  # "float16", "bfloat16" or "float32"

    @property
    def dtype(self) -> Any:
        import torch

        return getattr(torch, self.dtype_name)

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")


def resolve_placement(device: str, dtype: str) -> Placement:
    """`auto` device = cuda → mps → cpu; `auto` dtype = fp16 on CUDA, fp32 elsewhere.

    fp16 on CPU is refused: most CPU kernels lack it or are far slower than fp32.
    """
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    elif device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} asked for, but PyTorch sees no CUDA device")
    if dtype == "auto":
        dtype_name = "float16" if device.startswith("cuda") else "float32"
    else:
        dtype_name = _DTYPES[dtype]
    if device == "cpu" and dtype_name == "float16":
        raise RuntimeError("dtype fp16 is not usable on the CPU; use fp32 (or bf16)")
    return Placement(device=device, dtype_name=dtype_name)


def share_cpu_threads(placement: Placement, slots: int) -> int | None:
    """On the CPU, give each of `slots` concurrent jobs its share of torch's threads; returns the
    threads per job, or None where nothing changed (one slot, or a GPU).

    Each slot thread that runs torch gets an OpenMP team of torch's thread count; with more team
    threads than cores, libgomp stops spinning between parallel regions and every small op pays
    a wake-up. Measured on 2 cores, two slots of the tiny model: 1.19x the throughput with one
    thread each (docs/benchmarks.md, "CPU threads per slot").
    """
    if slots <= 1 or placement.device != "cpu":
        return None
    import torch

    per_slot = max(1, torch.get_num_threads() // slots)
    torch.set_num_threads(per_slot)
    log.info("CPU: %d jobs at once share the cores: %d torch thread(s) each", slots, per_slot)
    return per_slot


def apply_speed_settings(
    pipeline: Any,
    placement: Placement,
    *,
    attention: str,
    torch_compile: bool,
    channels_last: bool,
    vae_tiling: bool,
) -> None:
    """Attention kind, VAE tiling, and the CUDA-only memory format / compile flags."""
    if attention == "slicing":
        # Trades speed for VRAM: attention computed in slices.
        pipeline.enable_attention_slicing()
    else:
        from diffusers.models.attention_processor import AttnProcessor2_0

        # Fused scaled-dot-product attention (flash / memory-efficient kernels on CUDA).
        pipeline.unet.set_attn_processor(AttnProcessor2_0())
    if vae_tiling:
        pipeline.vae.enable_tiling()
    if not placement.is_cuda:
        if torch_compile or channels_last:
            log.info(
                "torch_compile/channels_last apply on CUDA only; ignored on %s", placement.device
            )
        return
    import torch

    # TF32 matmuls: free speed on Ampere+ for the fp32 parts (VAE upcast, schedulers).
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    if channels_last:
        pipeline.unet.to(memory_format=torch.channels_last)
        pipeline.vae.to(memory_format=torch.channels_last)
    if torch_compile:
        # Compiles on the first job of each size; later jobs of that size are faster. All task
        # pipelines made with from_pipe share this compiled UNet.
        pipeline.unet = torch.compile(pipeline.unet, mode="max-autotune-no-cudagraphs")


def is_out_of_memory(error: BaseException) -> bool:
    import torch

    if isinstance(error, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def release_memory(placement: Placement) -> None:
    """After an OOM: drop what the failed job left so the next job starts clean."""
    gc.collect()
    if placement.is_cuda:
        import torch

        torch.cuda.empty_cache()
    elif placement.device == "mps":
        import torch

        torch.mps.empty_cache()
