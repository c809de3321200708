"""Everything a job may ask for beyond the base model, loaded once at start and shared by jobs:
post-processors, ControlNet models, the LoRA/TI folders, the NSFW safety checker. Also what the
worker therefore serves (its Capabilities) and the per-job preparation of the shared model
(adapters, tiling, lock).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from horde_worker.adapters import AdapterLibrary, Prompts, applied
from horde_worker.job import Job

if TYPE_CHECKING:
    from horde_worker.config import WorkerSettings
    from horde_worker.controlnet import ControlNets
    from horde_worker.device import Placement
    from horde_worker.models import LoadedModel
    from horde_worker.postprocess import PostProcessors
    from horde_worker.safety import SafetyChecker


@dataclass
class Features:
    post_processors: PostProcessors | None = None
    controlnets: ControlNets | None = None
    adapters: AdapterLibrary = field(default_factory=AdapterLibrary)
    safety: SafetyChecker | None = None

    @classmethod
    def load(cls, settings: WorkerSettings, placement: Placement) -> Features:
        """Load what the settings configure; raises a ValueError subclass naming what failed."""
        features = cls(
            adapters=AdapterLibrary(settings.lora_folder, settings.textual_inversion_folder)
        )
        if settings.post_processors:
            from horde_worker.postprocess import PostProcessors

            features.post_processors = PostProcessors(placement, tile=settings.upscale_tile)
            features.post_processors.load(settings.post_processors)
        if settings.controlnets:
            from horde_worker.controlnet import ControlNets

            features.controlnets = ControlNets(placement)
            features.controlnets.load(settings.controlnets)
        from horde_worker.safety import SafetyChecker, find_checker

        checker_files = find_checker(settings.safety_checker, settings.models, settings.cache_dir)
        if checker_files is not None:
            features.safety = SafetyChecker.load(checker_files, placement)
        return features

    # ---- what the worker announces ----

    @property
    def post_processor_names(self) -> list[str]:
        return self.post_processors.names if self.post_processors else []

    @property
    def controlnet_types(self) -> list[str]:
        return self.controlnets.types if self.controlnets else []

    @property
    def control_map_types(self) -> list[str]:
        return self.controlnets.map_types if self.controlnets else []

    @property
    def nsfw_censor(self) -> bool:
        """Whether jobs asking for the NSFW censor can be served (announced in the pop)."""
        return self.safety is not None

    # ---- one job ----

    def controlnet_for(self, job: Job) -> Any | None:
        if job.control_type is None or self.controlnets is None:
            return None
        return self.controlnets.get(job.control_type)

    @contextmanager
    def prepared(self, job: Job, model: LoadedModel) -> Iterator[Prompts]:
        """The shared model made ready for `job` (its LoRAs, TIs, seamless tiling) and given
        back unchanged afterwards; a job that changes the model has it alone meanwhile."""
        from horde_worker.tiling import seamless

        prompts = Prompts(job.prompt, job.negative_prompt)
        use = model.use.exclusive() if job.changes_model else model.use.shared()
        with use, ExitStack() as stack:
            if job.tiling:
                stack.enter_context(seamless(model.pipeline, self.controlnet_for(job)))
            if job.loras or job.tis:
                prompts = stack.enter_context(
                    applied(model.pipeline, self.adapters, job.loras, job.tis, prompts)
                )
            yield prompts

    def nsfw_flags(self, images: list[Any], job: Job) -> list[bool]:
        """Which images the safety checker flags; all False, and the checker not run, when the
        job did not ask for the censor."""
        if not job.censor_nsfw:
            return [False] * len(images)
        if self.safety is None:
            # job_from_pop refuses such a job first; never hand out an unchecked image.
            raise ValueError("the job asks for the NSFW censor, but no safety checker is loaded")
        return self.safety.flagged(images)

    def post_process(self, image: Any, job: Job) -> Any:
        if not job.post_processing:
            return image
        if self.post_processors is None:
            raise ValueError("post-processing asked for, but none is configured here")
        return self.post_processors.apply(image, job.post_processing, job.post_processing_order)
