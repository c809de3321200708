"""What the live workers of a model can take, so a job is sized before it is sent instead of
waiting for a worker that will never come (a worker refuses images over its `max_pixels`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .payload import IMG2IMG, INPAINTING
from .replies import WorkerInfo

# A worker that listed no models (our horde shows "*") takes any model.
ANY_MODEL = "*"


class Capacity(str, Enum):
    UNKNOWN = "unknown"  # the workers were not (yet) loaded: nothing is clamped
    FITS = "fits"  # some worker takes the size as chosen
    CLAMPED = "clamped"  # made smaller so that the largest worker takes it
    NO_WORKER = "no_worker"  # no live worker serves this model (for this mode/NSFW setting)


@dataclass(frozen=True)
class ModelCapacity:
    workers: int  # live workers that can take the model (and the mode, and NSFW if asked)
    max_pixels: int | None  # the largest of their max_pixels; None when unknown or none


def model_capacity(
    workers: list[WorkerInfo] | None, model: str, mode: str | None, nsfw: bool
) -> ModelCapacity:
    """The workers that could take a job for `model` ("" = any) in `mode` (None: not known
    yet, any mode), asking for NSFW or not."""
    if workers is None:
        return ModelCapacity(0, None)
    usable = [
        worker
        for worker in workers
        if (not model or model in worker.models or ANY_MODEL in worker.models)
        and (not nsfw or worker.nsfw)
        and (mode != IMG2IMG or worker.img2img)
        and (mode != INPAINTING or worker.painting)
    ]
    if not usable:
        return ModelCapacity(0, None)
    return ModelCapacity(len(usable), max(worker.max_pixels for worker in usable))


def max_pixels_by_model(workers: list[WorkerInfo]) -> dict[str, int]:
    """The largest max_pixels among the workers of each model (for the model list)."""
    found: dict[str, int] = {}
    for worker in workers:
        for model in worker.models:
            found[model] = max(found.get(model, 0), worker.max_pixels)
    return found
