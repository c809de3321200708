"""LoRAs, textual inversions, ControlNet, hires fix and tiling on the tiny model, through the same
job_from_pop → generate path a popped job takes, with tiny files in the real formats."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from horde_protocol import PopPayload, PopReply
from horde_worker.adapters import AdapterLibrary
from horde_worker.config import load_settings
from horde_worker.controlnet import ControlNets, canny_map
from horde_worker.device import resolve_placement
from horde_worker.features import Features
from horde_worker.generate import generate
from horde_worker.job import Capabilities, JobRejected, job_from_pop
from horde_worker.models import LoadedModel, ModelRegistry
from horde_worker.tiling import seamless
from tests.helpers.live_worker import test_cache_dir as cache_dir
from tests.worker.images_util import encode, striped
from tests.worker.tiny_features import (
    write_controlnet,
    write_kohya_lora,
    write_textual_inversion,
)

CPU = resolve_placement("cpu", "fp32")
MODEL = "krita-horde-tiny"


def pop(payload: dict[str, Any] | None = None, **extra: Any) -> PopReply:
    base = {"prompt": "a fox", "ddim_steps": 2, "seed": "7", "sampler_name": "k_euler"}
    base.update(width=64, height=64)
    base.update(payload or {})
    return PopReply(id="f", model=MODEL, payload=PopPayload.model_validate(base), **extra)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def run(model: LoadedModel, features: Features, capabilities: Capabilities, **job: Any) -> Any:
    return generate(job_from_pop(pop(**job), capabilities), model, features=features)


# ---- LoRAs and textual inversions ----


@pytest.fixture(scope="module")
def adapter_folder(tiny_model: LoadedModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("adapters")
    write_kohya_lora(folder / "Detail-Tweaker.safetensors", tiny_model.pipeline)
    hidden = tiny_model.pipeline.text_encoder.config.hidden_size
    write_textual_inversion(folder / "bad-hands.safetensors", hidden)
    (folder / "horde-names.json").write_text(json.dumps({"58390": "Detail-Tweaker"}))
    return folder


@pytest.fixture(scope="module")
def adapters(adapter_folder: Path) -> tuple[Features, Capabilities]:
    library = AdapterLibrary(adapter_folder, adapter_folder)
    capabilities = Capabilities(
        (MODEL,), 512 * 512, True, True, loras=tuple(library.loras.names),
        tis=tuple(library.tis.names),
    )  # fmt: skip
    return Features(adapters=library), capabilities


def test_the_folder_serves_files_by_name_and_by_mapped_id(adapter_folder: Path) -> None:
    library = AdapterLibrary(adapter_folder, adapter_folder)
    assert library.loras.names == ["58390", "bad-hands", "detail-tweaker"]
    assert library.loras.find("DETAIL-tweaker") == library.loras.find("58390")


def test_a_lora_changes_the_image_and_is_gone_after_the_job(
    tiny_model: LoadedModel, adapters: tuple[Features, Capabilities]
) -> None:
    features, capabilities = adapters
    unet = tiny_model.pipeline.unet
    weights_before = {name: p.data_ptr() for name, p in unet.named_parameters()}
    plain = run(tiny_model, features, capabilities).images[0].image
    with_lora = (
        run(tiny_model, features, capabilities, payload={"loras": [{"name": "detail-tweaker"}]})
        .images[0]
        .image
    )
    after = run(tiny_model, features, capabilities).images[0].image
    assert np.abs(pixels(with_lora) - pixels(plain)).mean() > 1
    assert np.array_equal(pixels(after), pixels(plain))
    # No adapter layer is left, and the base weights are the very same tensors (never copied).
    assert not any("lora" in name for name, _ in unet.named_modules())
    assert {name: p.data_ptr() for name, p in unet.named_parameters()} == weights_before


def test_lora_strengths_apply_per_part(
    tiny_model: LoadedModel, adapters: tuple[Features, Capabilities]
) -> None:
    features, capabilities = adapters
    plain = run(tiny_model, features, capabilities).images[0].image

    def with_strengths(model: float, clip: float) -> np.ndarray:
        lora = {"name": "58390", "model": model, "clip": clip}
        job = run(tiny_model, features, capabilities, payload={"loras": [lora]})
        return pixels(job.images[0].image)

    assert np.array_equal(with_strengths(0.0, 0.0), pixels(plain))
    unet_only, clip_only = with_strengths(1.0, 0.0), with_strengths(0.0, 1.0)
    assert not np.array_equal(unet_only, pixels(plain))
    assert not np.array_equal(clip_only, pixels(plain))
    assert not np.array_equal(unet_only, clip_only)


def test_a_textual_inversion_changes_the_image_and_its_tokens_are_removed(
    tiny_model: LoadedModel, adapters: tuple[Features, Capabilities]
) -> None:
    features, capabilities = adapters
    tokenizer = tiny_model.pipeline.tokenizer
    vocabulary = len(tokenizer)
    plain = run(tiny_model, features, capabilities).images[0].image
    mentioned = (
        run(
            tiny_model,
            features,
            capabilities,
            payload={"prompt": "a fox, embedding:bad-hands", "tis": [{"name": "bad-hands"}]},
        )
        .images[0]
        .image
    )
    injected = (
        run(
            tiny_model,
            features,
            capabilities,
            payload={"tis": [{"name": "bad-hands", "inject_ti": "negprompt", "strength": 0.5}]},
        )
        .images[0]
        .image
    )
    assert np.abs(pixels(mentioned) - pixels(plain)).mean() > 1
    assert np.abs(pixels(injected) - pixels(plain)).mean() > 1
    # Removed: the tokens are gone and a plain job is exactly as before.
    assert len(tokenizer) == vocabulary
    after = run(tiny_model, features, capabilities).images[0].image
    assert np.array_equal(pixels(after), pixels(plain))


def test_a_lora_the_worker_lacks_is_refused_before_any_work(
    adapters: tuple[Features, Capabilities],
) -> None:
    _, capabilities = adapters
    with pytest.raises(JobRejected, match="LoRA 'other' is not available"):
        job_from_pop(pop({"loras": [{"name": "other"}]}), capabilities)


# ---- ControlNet ----


@pytest.fixture(scope="module")
def controlnets(
    tiny_model: LoadedModel, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Features, Capabilities]:
    folder = write_controlnet(tmp_path_factory.mktemp("cn") / "canny", tiny_model.pipeline.unet)
    loaded = ControlNets(CPU)
    loaded.load({"canny": str(folder), "depth": str(folder)})
    capabilities = Capabilities(
        (MODEL,), 512 * 512, True, True, controlnet_types=tuple(loaded.types),
        control_map_types=tuple(loaded.map_types),
    )  # fmt: skip
    return Features(controlnets=loaded), capabilities


def test_canny_finds_the_edges_of_a_shape() -> None:
    image = Image.new("RGB", (64, 64), (0, 0, 0))
    image.paste((255, 255, 255), (16, 16, 48, 48))
    edges = np.asarray(canny_map(image))[:, :, 0]
    assert edges[32, 15:18].max() == 255  # the box's left side
    assert edges[32, 24:40].max() == 0 and edges[2:10, 2:10].max() == 0  # inside and outside


def test_controlnet_conditioning_changes_the_output(
    tiny_model: LoadedModel, controlnets: tuple[Features, Capabilities]
) -> None:
    features, capabilities = controlnets
    source = {"source_image": encode(striped(64, 64))}
    strength = {"denoising_strength": 1.0}
    plain = run(tiny_model, Features(), capabilities, payload=strength, **source)
    canny = run(tiny_model, features, capabilities, payload={**strength, "control_type": "canny"},
                **source)  # fmt: skip
    assert plain.images[0].image.size == canny.images[0].image.size == (64, 64)
    assert np.abs(pixels(canny.images[0].image) - pixels(plain.images[0].image)).mean() > 1


def test_return_control_map_returns_the_computed_map(
    tiny_model: LoadedModel, controlnets: tuple[Features, Capabilities]
) -> None:
    features, capabilities = controlnets
    payload = {"control_type": "canny", "return_control_map": True}
    outcome = run(tiny_model, features, capabilities, payload=payload,
                  source_image=encode(striped(64, 64)))  # fmt: skip
    assert np.array_equal(pixels(outcome.images[0].image), pixels(canny_map(striped(64, 64))))
    assert outcome.steps_run == 0


def test_a_map_the_worker_cannot_compute_needs_image_is_control(
    tiny_model: LoadedModel, controlnets: tuple[Features, Capabilities]
) -> None:
    features, capabilities = controlnets
    source = encode(striped(64, 64))
    with pytest.raises(JobRejected, match="cannot compute a depth map"):
        job_from_pop(pop({"control_type": "depth"}, source_image=source), capabilities)
    payload = {"control_type": "depth", "image_is_control": True}
    outcome = run(tiny_model, features, capabilities, payload=payload, source_image=source)
    assert outcome.images[0].image.size == (64, 64) and outcome.steps_run > 0


# ---- hires fix ----


@pytest.fixture(scope="module")
def small_native_model(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The tiny model as a folder whose UNet says it was trained at 64x64 (sample size 8), so
    that hires fix applies to a 128x128 job (for SD 1.5 it applies above 512x512)."""
    folder = tmp_path_factory.mktemp("native64") / "model"
    shutil.copytree(tiny_model_dir, folder)
    config_path = folder / "unet" / "config.json"
    config = json.loads(config_path.read_text())
    config["sample_size"] = 8
    config_path.write_text(json.dumps(config))
    settings = load_settings(models={"native64": str(folder)}, cache_dir=cache_dir())
    registry = ModelRegistry(settings, CPU)
    registry.load_all()
    return registry.get("native64")


class LatentSizes:
    def __init__(self) -> None:
        self.sides: list[int] = []
        self.totals: list[int] = []

    def on_step(self, step: int, total: int, latents: Any) -> bool:
        self.sides.append(latents.shape[-1])
        self.totals.append(total)
        return False


def test_hires_fix_generates_small_then_refines_at_the_requested_size(
    small_native_model: LoadedModel,
) -> None:
    capabilities = Capabilities(("native64",), 512 * 512, True, True)
    reply = pop({"width": 128, "height": 128, "ddim_steps": 4, "hires_fix": True})
    reply.model = "native64"
    job = job_from_pop(reply, capabilities)
    watch = LatentSizes()
    outcome = generate(job, small_native_model, watch)
    assert outcome.images[0].image.size == (128, 128)
    # First pass at 64x64 (latents 8x8), second at 128x128 (16x16) with 0.65 of the steps.
    assert watch.sides == [8] * 4 + [16] * 2
    assert set(watch.totals) == {6}
    reply.payload.hires_fix = False
    single = LatentSizes()
    generate(job_from_pop(reply, capabilities), small_native_model, single)
    assert single.sides == [16] * 4


# ---- tiling ----


def test_tiling_gives_an_image_that_wraps_around(tiny_model: LoadedModel) -> None:
    """A tiled image lives on a torus: starting from noise shifted by k latent pixels gives the
    same image shifted by 8k pixels, so its right edge continues its left one (no seam). (k
    even: the UNet downsamples once by 2.)"""
    capabilities = Capabilities((MODEL,), 512 * 512, True, True)
    payload = {"ddim_steps": 3, "width": 64, "height": 64}
    plain = run(tiny_model, Features(), capabilities, payload=payload).images[0].image
    tiled = run(tiny_model, Features(), capabilities, payload={**payload, "tiling": True})
    assert tiled.images[0].image.size == (64, 64)
    assert not np.array_equal(pixels(tiled.images[0].image), pixels(plain))
    pipeline = tiny_model.pipeline
    noise = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(5))

    def image_from(latents: torch.Tensor) -> torch.Tensor:
        result = pipeline("a fox", latents=latents, num_inference_steps=3, output_type="pt")
        return result.images

    with torch.no_grad(), seamless(pipeline):
        image = image_from(noise)
        shifted = image_from(torch.roll(noise, shifts=(2, 4), dims=(-1, -2)))
    assert torch.allclose(torch.roll(image, shifts=(16, 32), dims=(-1, -2)), shifted, atol=2e-3)
    with torch.no_grad():
        unwrapped = image_from(torch.roll(noise, shifts=(2, 4), dims=(-1, -2)))
    assert not torch.allclose(
        torch.roll(image_from(noise), (16, 32), (-1, -2)), unwrapped, atol=2e-3
    )


def test_seamless_padding_makes_the_decoder_wrap_and_is_undone(tiny_model: LoadedModel) -> None:
    """Exactly: with circular padding, decoding shifted latents gives the shifted image."""
    vae = tiny_model.pipeline.vae
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), seamless(tiny_model.pipeline) as changed:
        image = vae.decode(latents).sample
        shifted = vae.decode(torch.roll(latents, 3, dims=-1)).sample
    assert changed > 0
    assert torch.allclose(torch.roll(image, 24, dims=-1), shifted, atol=1e-4)
    assert all(
        layer.padding_mode == "zeros" for layer in vae.modules() if hasattr(layer, "padding_mode")
    )


# ---- what the worker announces ----


def test_the_pop_announces_exactly_what_is_loaded(
    tiny_model: LoadedModel,
    adapter_folder: Path,
    controlnets: tuple[Features, Capabilities],
) -> None:
    from horde_worker.horde_client import HordeClient
    from horde_worker.loop import WorkerLoop

    settings = load_settings(models={MODEL: "tiny"}, cache_dir=cache_dir(), api_key="k" * 22)
    registry = ModelRegistry(settings, CPU)
    registry.add(tiny_model)
    registry.features = Features(
        controlnets=controlnets[0].controlnets, adapters=AdapterLibrary(adapter_folder)
    )
    loop = WorkerLoop(settings, registry, HordeClient(settings.horde_url, "k" * 22))
    pop = loop.popper().build_request()
    assert (pop.allow_lora, pop.allow_controlnet, pop.allow_post_processing) == (True, True, False)
    assert (pop.allow_hires_fix, pop.allow_tiling) == (True, True)
    assert pop.loras == ["58390", "bad-hands", "detail-tweaker"]
    assert (pop.controlnet_types, pop.control_map_types) == (["canny", "depth"], ["canny"])
    assert (pop.post_processors, pop.textual_inversions) == ([], [])
