"""Running one job on a loaded model: txt2img, img2img or inpainting from the same weights."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Protocol

from PIL import Image

from horde_worker.features import Features
from horde_worker.hires import HiresPlan, native_side, upscale_latents
from horde_worker.hires import plan as hires_plan
from horde_worker.images import fit, paste_unmasked
from horde_worker.interpolation import noise_arguments, prompt_arguments
from horde_worker.job import Job, Mode
from horde_worker.models import LoadedModel
from horde_worker.safety import placeholder


class StepObserver(Protocol):
    def on_step(self, step: int, total: int, latents: Any) -> bool:
        """Called after every denoising step (step counts from 1 over the whole job);
        return True to stop the job."""
        ...


class JobInterrupted(Exception):
    """The observer stopped the job (cancelled by the horde, or the worker is aborting)."""


@dataclass
class GeneratedImage:
    id: str
    seed: int
    image: Image.Image
    censored: bool = False  # the safety checker flagged it: `image` is the placeholder


@dataclass
class GenerationOutcome:
    images: list[GeneratedImage]
    steps_run: int
    seconds: float

    @property
    def iterations_per_second(self) -> float:
        return self.steps_run / self.seconds if self.seconds > 0 else 0.0


def task_pipeline(
    model: LoadedModel, mode: Mode, scheduler: Any, controlnet: Any | None = None
) -> Any:
    """A pipeline for `mode` sharing the model's modules, with its own scheduler (and the
    ControlNet variant of it when `controlnet` is given)."""
    from diffusers import (
        AutoPipelineForImage2Image,
        AutoPipelineForInpainting,
        AutoPipelineForText2Image,
    )

    factory = {
        Mode.TXT2IMG: AutoPipelineForText2Image,
        Mode.IMG2IMG: AutoPipelineForImage2Image,
        Mode.INPAINTING: AutoPipelineForInpainting,
    }[mode]
    extra = {"controlnet": controlnet} if controlnet is not None else {}
    pipeline = factory.from_pipe(model.pipeline, scheduler=scheduler, **extra)
    # The model's own progress-bar setting (on only in an interactive terminal).
    pipeline.set_progress_bar_config(**getattr(model.pipeline, "_progress_bar_config", {}))
    return pipeline


def diffusers_clip_skip(horde_clip_skip: int, text_encoder: Any) -> int | None:
    """Horde clip_skip 1 = last layer (diffusers None); N = skip N-1 layers, bounded by depth."""
    skip = horde_clip_skip - 1
    if skip <= 0:
        return None
    layers = getattr(getattr(text_encoder, "config", None), "num_hidden_layers", skip + 1)
    return max(0, min(skip, layers - 1)) or None


def effective_steps(steps: int, strength: float) -> int:
    """Steps to ask for so that at least one denoising step runs at this strength."""
    if int(steps * strength) >= 1:
        return steps
    return math.ceil(1 / strength)


def _interpolated(pipeline: Any, job: Job, seed: int, arguments: dict[str, Any]) -> dict:
    """Our `interpolation` extension: noise and/or prompt embeddings between two ends."""
    assert job.interpolation is not None
    return {
        **noise_arguments(pipeline, job.interpolation, job.width, job.height, seed),
        **prompt_arguments(
            pipeline,
            job.interpolation,
            arguments["prompt"],
            arguments["negative_prompt"],
            job.cfg_scale,
            arguments["clip_skip"],
        ),
    }


def generate(
    job: Job,
    model: LoadedModel,
    observer: StepObserver | None = None,
    features: Features | None = None,
) -> GenerationOutcome:
    """Generate every image of `job` (one per id). Raises JobInterrupted if stopped."""
    import torch

    features = features or Features()
    started = time.perf_counter()
    steps_done = 0
    images: list[GeneratedImage] = []
    control_image = _control_image(job)
    with features.prepared(job, model) as prompts:
        for index, (image_id, seed) in enumerate(zip(job.ids, job.seeds, strict=True)):
            if job.return_control_map and control_image is not None:
                # The public horde's return_control_map: the map itself is the result.
                images.append(GeneratedImage(id=image_id, seed=seed, image=control_image))
                continue
            scheduler = model.schedulers.fresh(
                job.sampler_name, job.karras, model.pipeline.scheduler.config
            )
            pipeline = task_pipeline(model, job.mode, scheduler, features.controlnet_for(job))
            stopped = False
            image_offset = steps_done
            hires = _hires_plan(job, model)
            # Steps of this image's passes that are not the running one (hires fix: 2 passes).
            other_passes = [_second_pass_steps(job, hires) if hires else 0]
            image_steps = 0

            def on_step_end(
                pipe: Any,
                step: int,
                timestep: Any,
                tensors: dict[str, Any],
                image_offset: int = image_offset,
                other_passes: list[int] = other_passes,
            ) -> dict:
                nonlocal steps_done, stopped, image_steps
                steps_done += 1
                image_steps += 1
                if observer is not None:
                    per_image = pipe.num_timesteps + other_passes[0]
                    total = per_image * len(job.ids)
                    latents = tensors.get("latents")
                    if observer.on_step(image_offset + image_steps, total, latents):
                        stopped = True
                        pipe._interrupt = True  # skips the remaining steps
                return tensors

            arguments: dict[str, Any] = {
                "prompt": prompts.prompt,
                "negative_prompt": prompts.negative_prompt or None,
                "guidance_scale": job.cfg_scale,
                "num_inference_steps": effective_steps(job.steps, job.strength),
                # A fresh CPU generator per image: same seed, same image, on any device.
                "generator": torch.Generator(device="cpu").manual_seed(seed),
                "clip_skip": diffusers_clip_skip(job.clip_skip, model.pipeline.text_encoder),
                "callback_on_step_end": on_step_end,
                "output_type": "pil",
            }
            if job.interpolation is not None:
                arguments.update(_interpolated(pipeline, job, seed, arguments))
            if job.mode is Mode.TXT2IMG:
                arguments.update(width=job.width, height=job.height)
            elif job.mode is Mode.IMG2IMG:
                arguments.update(image=job.source_image, strength=job.strength)
            else:
                arguments.update(
                    image=job.source_image,
                    mask_image=job.mask,
                    strength=job.strength,
                    width=job.width,
                    height=job.height,
                )
            if control_image is not None:
                arguments.update(control_image=control_image)
            if hires is None:
                result = pipeline(**arguments).images[0]
            else:
                result = _two_passes(job, model, pipeline, arguments, hires, features, other_passes)
            if stopped:
                raise JobInterrupted(f"job {job.id} stopped at image {index + 1}")
            result = fit(result, job.width, job.height)
            if (
                job.mode is Mode.INPAINTING
                and job.source_image is not None
                and job.mask is not None
            ):
                result = paste_unmasked(result, job.source_image, job.mask)
            if result.mode != "RGB":
                result = result.convert("RGB")
            result = features.post_process(result, job)
            images.append(GeneratedImage(id=image_id, seed=seed, image=result))
    _censor(images, job, features)
    return GenerationOutcome(
        images=images, steps_run=steps_done, seconds=time.perf_counter() - started
    )


def _censor(images: list[GeneratedImage], job: Job, features: Features) -> None:
    """The final images (decoded, post-processed) through the safety checker, one call for the
    batch, when the job asks for it; a flagged one is replaced, nothing of it is kept."""
    flags = features.nsfw_flags([generated.image for generated in images], job)
    for generated, flagged in zip(images, flags, strict=True):
        if flagged:
            generated.image = placeholder(generated.image.size)
            generated.censored = True


def _control_image(job: Job) -> Image.Image | None:
    if job.control_type is None or job.source_image is None:
        return None
    from horde_worker.controlnet import control_map

    return fit(
        control_map(job.source_image, job.control_type, job.image_is_control), job.width, job.height
    )


def _hires_plan(job: Job, model: LoadedModel) -> HiresPlan | None:
    if not job.hires_fix:
        return None
    img2img_strength = job.strength if job.mode is Mode.IMG2IMG else None
    return hires_plan(
        job.width,
        job.height,
        native_side(model.pipeline),
        job.hires_fix_strength,
        img2img_strength,
    )


def _second_pass_steps(job: Job, hires: HiresPlan) -> int:
    return max(1, int(effective_steps(job.steps, hires.strength) * hires.strength))


def _two_passes(
    job: Job,
    model: LoadedModel,
    first_pipeline: Any,
    arguments: dict[str, Any],
    hires: HiresPlan,
    features: Features,
    other_passes: list[int],
) -> Image.Image:
    """Hires fix: the first pass at `hires`'s size, its latents upscaled to the job's size,
    then img2img over them at `hires.strength` (worker/hires.py)."""
    first = dict(arguments, output_type="latent")
    if job.mode is Mode.TXT2IMG:
        first.update(width=hires.first_width, height=hires.first_height)
    else:
        first.update(image=fit(job.source_image, hires.first_width, hires.first_height))
    if "control_image" in first:
        first["control_image"] = fit(first["control_image"], hires.first_width, hires.first_height)
    latents = first_pipeline(**first).images
    if first_pipeline.interrupt:  # stopped by the observer: the caller raises
        return Image.new("RGB", (job.width, job.height))
    other_passes[0] = first_pipeline.num_timesteps
    upscaled = upscale_latents(latents, job.width, job.height, model.pipeline.vae_scale_factor)
    scheduler = model.schedulers.fresh(
        job.sampler_name, job.karras, model.pipeline.scheduler.config
    )
    second_pipeline = task_pipeline(model, Mode.IMG2IMG, scheduler, features.controlnet_for(job))
    second = dict(arguments, image=upscaled, strength=hires.strength)
    second["num_inference_steps"] = effective_steps(job.steps, hires.strength)
    second.pop("width", None)
    second.pop("height", None)
    return second_pipeline(**second).images[0]
