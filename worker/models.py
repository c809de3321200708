"""Loading the configured models once and keeping them loaded ("model always loaded").

Each model is one text-to-image pipeline; img2img and inpainting pipelines are made per job with
`from_pipe`, which reuses the loaded modules (no second copy of the weights).
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from horde_worker.capacity import (
    Capacity,
    DeviceMemory,
    Family,
    default_max_pixels,
    device_memory,
    estimate_capacity,
    family_of,
    needs_vae_tiling,
    side,
    width_of,
)
from horde_worker.config import CHECKPOINT_SUFFIXES, WorkerSettings
from horde_worker.device import Placement, apply_speed_settings
from horde_worker.features import Features
from horde_worker.model_use import ModelUse
from horde_worker.prediction import Prediction
from horde_worker.samplers import SchedulerCache
from horde_worker.tiny_model import TINY_SOURCE, ensure_tiny_pipeline

log = logging.getLogger(__name__)


class ModelLoadError(RuntimeError):
    """A configured model could not be loaded; the message names it and says why."""


@dataclass
class LoadedModel:
    name: str
    source: str
    pipeline: Any  # the text-to-image pipeline holding the weights
    schedulers: SchedulerCache = field(default_factory=SchedulerCache, repr=False)
    use: ModelUse = field(default_factory=ModelUse, repr=False)


def load_pipeline(
    source: str,
    placement: Placement,
    cache_dir: Path,
    prediction: Prediction | None = None,
    reference_prediction: Prediction | None = None,
) -> Any:
    """The text-to-image pipeline for one local source, on `placement`. Loading never
    downloads (`local_files_only`): fetching is worker/provision.py's job, done before, with a
    size check and a progress bar. `prediction` (the volunteer's setting) and
    `reference_prediction` (the model reference's) apply to single files; a diffusers folder's
    scheduler config already says what it predicts."""
    from diffusers import AutoPipelineForText2Image

    from horde_worker.single_file import load_single_file

    common = {"dtype": placement.dtype, "local_files_only": True}
    path = Path(source).expanduser()
    try:
        if source == TINY_SOURCE:
            folder = ensure_tiny_pipeline(cache_dir)
            pipeline = AutoPipelineForText2Image.from_pretrained(str(folder), **common)
        elif path.is_dir():
            if prediction is not None:
                log.warning(
                    "%s: the predictions setting applies to single files; a diffusers folder's"
                    " scheduler config says what it predicts",
                    source,
                )
            pipeline = AutoPipelineForText2Image.from_pretrained(
                str(path), **common, **_without_safety_checker(path)
            )
        elif path.is_file() and path.suffix.lower() in CHECKPOINT_SUFFIXES:
            pipeline = load_single_file(
                path, placement.dtype, cache_dir, prediction, reference_prediction
            )
        else:
            pipeline = AutoPipelineForText2Image.from_pretrained(source, **common)
    except (OSError, ValueError) as error:
        hint = ""
        if path.is_file():
            hint = (
                " (a single file loads when it is an SD 1.x, SD 2.x or SDXL checkpoint in the"
                " original layout; converting it to a diffusers folder always works)"
            )
        elif source != TINY_SOURCE and not path.exists():
            hint = " (a hub id is fetched before loading unless offline)"
        raise ModelLoadError(f"cannot load model source {source!r}: {error}{hint}") from error
    pipeline.to(placement.device)
    _alias_text_model(pipeline)
    return pipeline


def _without_safety_checker(folder: Path) -> dict[str, Any]:
    """Load arguments that leave a folder's own safety checker out of the pipeline.

    Inside the pipeline it would run on every image and black out the flagged ones, whether the
    job asked for censorship or not; worker/safety.py loads it once, beside the models, and runs
    it only for jobs that ask. Only pipelines that have the component are given the arguments
    (SDXL's would warn about unexpected ones)."""
    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if "safety_checker" not in index:
        return {}
    return {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}


def _alias_text_model(pipeline: Any) -> None:
    """diffusers 0.42 reaches `text_encoder.text_model.final_layer_norm` for clip_skip, but
    transformers 5 flattened CLIPTextModel (the norm is on the model itself). Alias the old
    path. object.__setattr__ keeps it out of the module tree (no cycle in state_dict)."""
    encoder = getattr(pipeline, "text_encoder", None)
    if encoder is None or hasattr(encoder, "text_model"):
        return
    if hasattr(encoder, "final_layer_norm"):
        object.__setattr__(encoder, "text_model", encoder)


class ModelRegistry:
    """The loaded models by horde name."""

    def __init__(self, settings: WorkerSettings, placement: Placement) -> None:
        self.settings = settings
        self.placement = placement
        self._models: dict[str, LoadedModel] = {}
        self.features = Features()
        # Set by load_all (fit_size): the device's memory and what it is estimated to serve.
        self.memory: DeviceMemory | None = None
        self.capacity = Capacity("sd1", 2, 0, 0)
        self.size_report = ""

    def load_all(self) -> None:
        # Post-processors, ControlNets and the LoRA/TI folders first: a wrong file there fails
        # the start before minutes go into loading checkpoints.
        try:
            self.features = Features.load(self.settings, self.placement)
        except ValueError as error:
            raise ModelLoadError(str(error)) from error
        from horde_worker.downloads import DownloadError
        from horde_worker.model_reference import ModelReferenceError
        from horde_worker.provision import Provisioner, ProvisionError

        provisioner = Provisioner(self.settings)
        try:
            local = provisioner.local_sources()
            hints = {
                name: provisioner.reference_prediction(name, source)
                for name, source in self.settings.require_models().items()
            }
        except (ProvisionError, DownloadError, ModelReferenceError, OSError) as error:
            raise ModelLoadError(str(error)) from error
        for name, source in self.settings.require_models().items():
            log.info(
                "loading model %s from %s on %s (%s)",
                name,
                source,
                self.placement.device,
                self.placement.dtype_name,
            )
            pipeline = load_pipeline(
                local[name],
                self.placement,
                self.settings.cache_dir,
                self.settings.predictions.get(name),
                hints[name],
            )
            # A progress bar only where someone watches a terminal; log files stay clean.
            pipeline.set_progress_bar_config(disable=not sys.stderr.isatty())
            self._models[name] = LoadedModel(name=name, source=source, pipeline=pipeline)
        # Measured once every model is in memory: what is left is what the jobs get.
        self.size_report = self.fit_size()
        log.info("%s", self.size_report)
        tiling = needs_vae_tiling(self.settings.vae_tiling, self.settings.max_pixels, self.capacity)
        for model in self._models.values():
            apply_speed_settings(
                model.pipeline,
                self.placement,
                attention=self.settings.attention,
                torch_compile=self.settings.torch_compile,
                channels_last=self.settings.channels_last,
                vae_tiling=tiling,
            )

    def fit_size(self) -> str:
        """Measure the device's memory, estimate the largest size the loaded models can serve,
        and default `max_pixels` from it unless the volunteer set it. Returns the report line."""
        self.memory = device_memory(self.placement.device)
        # The most demanding family decides: any served model may get the largest job.
        families = {family_of(model.pipeline) for model in self._models.values()}
        family: Family = "sdxl" if "sdxl" in families else "sd1"
        bytes_per_value = 4 if self.placement.dtype_name == "float32" else 2
        width = max(width_of(model.pipeline) for model in self._models.values())
        self.capacity = estimate_capacity(self.memory.free_bytes, family, bytes_per_value, width)
        # Read before assigning: pydantic counts an assigned field as set.
        estimated = not self.settings.max_pixels_set
        if estimated:
            self.settings.max_pixels = default_max_pixels(self.capacity, self.placement.device)
        tiling = needs_vae_tiling(self.settings.vae_tiling, self.settings.max_pixels, self.capacity)
        chosen = "estimated" if estimated else "set"
        return (
            f"device {self.memory.describe()}; largest size estimated for {family} at"
            f" {8 * bytes_per_value}-bit: {side(self.capacity.untiled_pixels)} untiled,"
            f" {side(self.capacity.tiled_pixels)} with VAE tiling; max_pixels="
            f"{self.settings.max_pixels} ({chosen}, about {side(self.settings.max_pixels)});"
            f" VAE tiling {'on' if tiling else 'off'} ({self.settings.vae_tiling})"
        )

    def add(self, model: LoadedModel) -> None:
        self._models[model.name] = model

    @property
    def names(self) -> list[str]:
        return list(self._models)

    def get(self, name: str | None) -> LoadedModel | None:
        if name is None:
            # The public horde may omit the model when the worker serves one; take it then.
            return next(iter(self._models.values())) if len(self._models) == 1 else None
        return self._models.get(name)
