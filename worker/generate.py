"""Running one job on a loaded model: txt2img, img2img or inpainting from the same weights."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Protocol

from PIL import Image

from horde_worker.images import fit, paste_unmasked
from horde_worker.interpolation import noise_arguments, prompt_arguments
from horde_worker.job import Job, Mode
from horde_worker.models import LoadedModel


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


@dataclass
class GenerationOutcome:
    images: list[GeneratedImage]
    steps_run: int
    seconds: float

    @property
    def iterations_per_second(self) -> float:
        return self.steps_run / self.seconds if self.seconds > 0 else 0.0


def task_pipeline(model: LoadedModel, mode: Mode, scheduler: Any) -> Any:
    """A pipeline for `mode` sharing the model's modules, with its own scheduler."""
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
    pipeline = factory.from_pipe(model.pipeline, scheduler=scheduler)
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
    job: Job, model: LoadedModel, observer: StepObserver | None = None
) -> GenerationOutcome:
    """Generate every image of `job` (one per id). Raises JobInterrupted if stopped."""
    import torch

    started = time.perf_counter()
    steps_done = 0
    images: list[GeneratedImage] = []
    for index, (image_id, seed) in enumerate(zip(job.ids, job.seeds, strict=True)):
        scheduler = model.schedulers.fresh(
            job.sampler_name, job.karras, model.pipeline.scheduler.config
        )
        pipeline = task_pipeline(model, job.mode, scheduler)
        stopped = False
        image_offset = steps_done

        def on_step_end(
            pipe: Any,
            step: int,
            timestep: Any,
            tensors: dict[str, Any],
            image_offset: int = image_offset,
        ) -> dict:
            nonlocal steps_done, stopped
            steps_done += 1
            if observer is not None:
                per_image = pipe.num_timesteps
                total = per_image * len(job.ids)
                latents = tensors.get("latents")
                if observer.on_step(image_offset + step + 1, total, latents):
                    stopped = True
                    pipe._interrupt = True  # skips the remaining steps
            return tensors

        arguments: dict[str, Any] = {
            "prompt": job.prompt,
            "negative_prompt": job.negative_prompt or None,
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
        result = pipeline(**arguments).images[0]
        if stopped:
            raise JobInterrupted(f"job {job.id} stopped at image {index + 1}")
        result = fit(result, job.width, job.height)
        if job.mode is Mode.INPAINTING and job.source_image is not None and job.mask is not None:
            result = paste_unmasked(result, job.source_image, job.mask)
        if result.mode != "RGB":
            result = result.convert("RGB")
        images.append(GeneratedImage(id=image_id, seed=seed, image=result))
    return GenerationOutcome(
        images=images, steps_run=steps_done, seconds=time.perf_counter() - started
    )
