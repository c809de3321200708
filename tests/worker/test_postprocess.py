"""Upscalers: real ESRGAN file layouts load, run tile by tile, and enlarge a job's result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from horde_protocol import PopPayload, PopReply
from horde_worker.device import resolve_placement
from horde_worker.esrgan import UpscalerLoadError, load_upscaler
from horde_worker.features import Features
from horde_worker.generate import generate
from horde_worker.job import Capabilities, job_from_pop
from horde_worker.models import LoadedModel
from horde_worker.postprocess import PostProcessorError, PostProcessors, order_of
from horde_worker.tiles import run_tiled
from tests.worker.images_util import striped
from tests.worker.tiny_features import write_original_esrgan, write_realesrgan

CPU = resolve_placement("cpu", "fp32")


def _input_sizes(network: torch.nn.Module) -> list[tuple[int, ...]]:
    """Records the shape of every input the network's first convolution sees."""
    seen: list[tuple[int, ...]] = []
    network.conv_first.register_forward_hook(lambda _m, args, _o: seen.append(args[0].shape))
    return seen


@pytest.mark.parametrize(
    ("writer", "unshuffle", "scale"),
    [(write_realesrgan, 1, 4), (write_realesrgan, 2, 2), (write_original_esrgan, 1, 4)],
    ids=["RealESRGAN_x4plus layout", "RealESRGAN_x2plus layout", "original ESRGAN layout"],
)
def test_each_file_layout_loads_and_upscales_by_its_factor(
    tmp_path: Path, writer: Any, unshuffle: int, scale: int
) -> None:
    network = load_upscaler(writer(tmp_path / "up.pth", unshuffle=unshuffle))
    assert network.scale == scale
    image = striped(40, 24)
    result = run_tiled(network, image, network.scale, tile=16, margin=8)
    assert result.size == (40 * scale, 24 * scale)
    # Not a plain resize: the network's own (random) features are in the result.
    plain = np.asarray(image.resize(result.size, Image.Resampling.BICUBIC), dtype=np.int16)
    assert np.abs(np.asarray(result, dtype=np.int16) - plain).mean() > 5


def test_a_file_of_another_architecture_is_refused_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "gfpgan.pth"
    torch.save({"params_ema": {"stylegan_decoder.style_mlp.1.weight": torch.zeros(4, 4)}}, path)
    with pytest.raises(UpscalerLoadError, match="not an ESRGAN-family"):
        load_upscaler(path)


def test_tiles_join_without_seams(tmp_path: Path) -> None:
    network = load_upscaler(write_realesrgan(tmp_path / "up.pth"))
    image = striped(32, 32)
    # The tiny network sees 17 pixels around each one: a margin of 20 gives every tile the
    # same neighbourhood as the whole image, so tiling changes nothing.
    whole = run_tiled(network, image, 4, tile=32, margin=0)
    tiled = run_tiled(network, image, 4, tile=16, margin=20)
    difference = np.abs(np.asarray(whole, dtype=np.int16) - np.asarray(tiled, dtype=np.int16))
    assert difference.max() <= 1


@pytest.mark.slow
def test_a_4x_upscale_of_1024_squared_runs_in_bounded_tiles(tmp_path: Path) -> None:
    network = load_upscaler(write_realesrgan(tmp_path / "up.pth", features=4, growth=2))
    seen = _input_sizes(network)
    result = run_tiled(network, Image.new("RGB", (1024, 1024), (90, 120, 150)), 4, tile=256)
    assert result.size == (4096, 4096)
    assert len(seen) == 16
    # The network never sees more than a tile and its margins (memory bound by the tile).
    assert max(shape[2] * shape[3] for shape in seen) <= (256 + 2 * 16) ** 2


def test_order_follows_post_processing_order() -> None:
    names = ["RealESRGAN_x4plus", "GFPGAN"]
    assert order_of(names, None) == ["GFPGAN", "RealESRGAN_x4plus"]
    assert order_of(names, "upscalers_first") == ["RealESRGAN_x4plus", "GFPGAN"]
    assert order_of(["GFPGAN", "RealESRGAN_x4plus"], "custom") == ["GFPGAN", "RealESRGAN_x4plus"]


def test_a_file_whose_factor_is_not_the_names_is_refused(tmp_path: Path) -> None:
    processors = PostProcessors(CPU)
    with pytest.raises(PostProcessorError, match="is a 4x model, but RealESRGAN_x2plus is 2x"):
        processors.load({"RealESRGAN_x2plus": str(write_realesrgan(tmp_path / "x4.pth"))})


def test_a_job_with_an_upscaler_returns_the_upscaled_image(
    tiny_model: LoadedModel, tmp_path: Path
) -> None:
    processors = PostProcessors(CPU, tile=32)
    processors.load({"RealESRGAN_x4plus": str(write_realesrgan(tmp_path / "x4.pth"))})
    upscaler = processors.get("RealESRGAN_x4plus")
    assert upscaler is not None
    seen = _input_sizes(upscaler.network)
    capabilities = Capabilities(
        ("krita-horde-tiny",), 512 * 512, True, True, post_processors=("RealESRGAN_x4plus",)
    )
    payload = {"prompt": "a fox", "ddim_steps": 2, "seed": "3", "width": 64, "height": 64}
    reply = PopReply(
        id="pp",
        model="krita-horde-tiny",
        payload=PopPayload.model_validate({**payload, "post_processing": ["RealESRGAN_x4plus"]}),
    )
    job = job_from_pop(reply, capabilities)
    outcome = generate(job, tiny_model, features=Features(post_processors=processors))
    assert outcome.images[0].image.size == (256, 256)
    assert len(seen) == 4  # 64x64 in 32-pixel tiles: the architecture really ran
