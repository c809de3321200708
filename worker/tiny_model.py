"""The tiny random-weight Stable Diffusion pipeline: proves the whole path without a real model.

Its weights are noise (the images are noise too) but every module has the shape and behaviour of
SD 1.x: a 4-block VAE (latents 1/8 of the image side), a cross-attention UNet, a CLIP text
encoder and tokenizer. It is built locally from a fixed seed, so two builds hold the same weights,
and nothing is ever fetched from a model hub.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

TINY_MODEL_NAME = "krita-horde-tiny"
TINY_SOURCE = "tiny"
# Bump when the architecture below changes, so cached builds of an older layout are not reused.
TINY_LAYOUT_VERSION = 1
_SEED = 0
_VOCAB_SIZE = 1000


def default_cache_dir() -> Path:
    """Where built artefacts live: `HORDE_WORKER_CACHE_DIR`, else `~/.cache/krita-horde`."""
    configured = os.environ.get("HORDE_WORKER_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "krita-horde"


def _write_tokenizer_files(directory: Path) -> tuple[Path, Path]:
    """A byte-level BPE vocabulary small enough for the tiny text encoder (vocab_size 1000)."""
    specials = ["<|startoftext|>", "<|endoftext|>"]
    # CLIP's tokenizer maps bytes to printable characters; word-final pieces end in "</w>".
    base = [chr(c) for c in range(ord("!"), ord("~") + 1)]
    tokens: list[str] = [*specials]
    tokens += base
    tokens += [f"{ch}</w>" for ch in base]
    merges: list[tuple[str, str]] = []
    letters = "abcdefghijklmnopqrstuvwxyz"
    for first in letters:
        for second in letters:
            if len(tokens) >= _VOCAB_SIZE:
                break
            merges.append((first, f"{second}</w>"))
            tokens.append(f"{first}{second}</w>")
    vocab = {token: index for index, token in enumerate(tokens[:_VOCAB_SIZE])}
    vocab_path = directory / "vocab.json"
    merges_path = directory / "merges.txt"
    vocab_path.write_text(json.dumps(vocab), encoding="utf-8")
    lines = ["#version: 0.2", *(f"{a} {b}" for a, b in merges)]
    merges_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return vocab_path, merges_path


def build_tiny_pipeline(output_dir: Path) -> Path:
    """Build the tiny pipeline and `save_pretrained` it into `output_dir` (created if missing).

    Deterministic: the weights come from `torch.manual_seed(0)` in a fixed construction order.
    """
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    # The RNG is global: keep the caller's state intact.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_SEED)
        unet = UNet2DConditionModel(
            block_out_channels=(32, 64),
            layers_per_block=1,
            sample_size=64,
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32,
            norm_num_groups=8,
            attention_head_dim=8,
        )
        vae = AutoencoderKL(
            block_out_channels=[8, 16, 32, 32],
            in_channels=3,
            out_channels=3,
            down_block_types=["DownEncoderBlock2D"] * 4,
            up_block_types=["UpDecoderBlock2D"] * 4,
            latent_channels=4,
            norm_num_groups=8,
            layers_per_block=1,
            sample_size=512,
            mid_block_add_attention=False,
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                bos_token_id=0,
                eos_token_id=2,
                hidden_size=32,
                intermediate_size=37,
                layer_norm_eps=1e-05,
                num_attention_heads=4,
                num_hidden_layers=2,
                pad_token_id=1,
                vocab_size=_VOCAB_SIZE,
            )
        )
    with tempfile.TemporaryDirectory() as scratch:
        vocab_path, merges_path = _write_tokenizer_files(Path(scratch))
        tokenizer = CLIPTokenizer(
            str(vocab_path), str(merges_path), model_max_length=77, pad_token="<|endoftext|>"
        )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipeline = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(str(output_dir))
    return output_dir


def ensure_tiny_pipeline(cache_dir: Path | None = None) -> Path:
    """The cached tiny pipeline folder, built on first use."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return ensure_built(
        root / f"tiny-sd-v{TINY_LAYOUT_VERSION}", "model_index.json", build_tiny_pipeline
    )


def ensure_built(target: Path, marker: str, build: Callable[[Path], object]) -> Path:
    """`target`, built by `build` on first use (it exists once `target/marker` does).

    Built into a temporary sibling and renamed into place, so a crash mid-build or two workers
    starting at once never leave (or read) a half-written folder.
    """
    if (target / marker).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".tiny-build-", dir=target.parent))
    try:
        build(scratch)
        try:
            os.rename(scratch, target)
        except OSError:
            # Another process won the race; its build is identical.
            if not (target / marker).is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target
