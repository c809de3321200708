"""The NSFW safety checker: diffusers' StableDiffusionSafetyChecker and its CLIP feature
extractor, loaded once and shared by every model, run only on the images of jobs that ask for
the censor (`use_nsfw_censor`).

Where it comes from, first found wins: the folder the volunteer configures (`safety_checker`),
else the `safety_checker/` + `feature_extractor/` folders a model folder ships (as SD 1.x
diffusers folders do, and the `tiny` test model's tiny checker, worker/tiny_checker.py). The
model pipelines themselves are loaded without it (worker/models.py): left in the pipeline, it
would black out every image of every job, asked or not.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from horde_worker.tiny_checker import ensure_tiny_checker
from horde_worker.tiny_model import TINY_SOURCE

if TYPE_CHECKING:
    from horde_worker.device import Placement

log = logging.getLogger(__name__)

CHECKER_FOLDER = "safety_checker"
EXTRACTOR_FOLDER = "feature_extractor"
CHECKER_CONFIG = "config.json"
EXTRACTOR_CONFIG = "preprocessor_config.json"
# A flat mid grey: it keeps the size the requester asked for and nothing of the original.
PLACEHOLDER_RGB = (128, 128, 128)


class SafetyCheckerError(ValueError):
    """The safety checker files are missing or unreadable; the message names the folder."""


@dataclass(frozen=True)
class CheckerFiles:
    checker: Path  # the folder with the checker's config.json and weights
    feature_extractor: Path  # the folder with preprocessor_config.json
    source: str  # how `horde-worker check` and the log name it


def checker_files(folder: Path) -> CheckerFiles | None:
    """The checker in `folder`, in either layout: a model folder's `safety_checker/` and
    `feature_extractor/` subfolders, or both configs side by side (as the standalone checker
    is published). None when `folder` holds neither."""
    folder = Path(folder).expanduser()
    nested = (folder / CHECKER_FOLDER, folder / EXTRACTOR_FOLDER)
    for checker, extractor in (nested, (folder, folder)):
        if (checker / CHECKER_CONFIG).is_file() and (extractor / EXTRACTOR_CONFIG).is_file():
            return CheckerFiles(checker, extractor, str(folder))
    return None


def find_checker(
    configured: Path | None, model_sources: Mapping[str, str], cache_dir: Path | None = None
) -> CheckerFiles | None:
    """The configured checker folder, else the first model folder that ships one (the `tiny`
    model ships a tiny one that flags nothing, built in `cache_dir`), else None.

    A configured folder without a checker is an error, not a silent fall-through: the volunteer
    meant to have one.
    """
    if configured is not None:
        files = checker_files(configured)
        if files is None:
            raise SafetyCheckerError(
                f"safety_checker {configured}: no safety checker there; expected"
                f" {CHECKER_FOLDER}/{CHECKER_CONFIG} and {EXTRACTOR_FOLDER}/{EXTRACTOR_CONFIG},"
                f" or {CHECKER_CONFIG} and {EXTRACTOR_CONFIG} side by side"
            )
        return files
    for name, source in model_sources.items():
        if source == TINY_SOURCE:
            files = checker_files(ensure_tiny_checker(cache_dir))
            assert files is not None
            label = f"model {name} (the tiny model's random-weight checker: it flags nothing)"
            return CheckerFiles(files.checker, files.feature_extractor, label)
        path = Path(source).expanduser()
        if not path.is_dir():
            continue  # single-file checkpoints and hub ids ship no checker folder
        files = checker_files(path)
        if files is not None:
            return CheckerFiles(files.checker, files.feature_extractor, f"model {name} ({path})")
    return None


def placeholder(size: tuple[int, int]) -> Image.Image:
    """What a flagged image becomes: the same size, one flat colour."""
    return Image.new("RGB", size, PLACEHOLDER_RGB)


class SafetyChecker:
    """One loaded checker for the whole worker (its calls are stateless, so slots share it)."""

    def __init__(self, model: Any, feature_extractor: Any, placement: Placement, source: str):
        self.model = model
        self.feature_extractor = feature_extractor
        self.placement = placement
        self.source = source

    @classmethod
    def load(cls, files: CheckerFiles, placement: Placement) -> SafetyChecker:
        """Load on `placement` in its dtype (fp16 on CUDA like the pipelines, fp32 on CPU);
        nothing is downloaded."""
        from diffusers.pipelines.stable_diffusion.safety_checker import (
            StableDiffusionSafetyChecker,
        )
        from transformers import CLIPImageProcessor

        try:
            model = StableDiffusionSafetyChecker.from_pretrained(
                str(files.checker), dtype=placement.dtype, local_files_only=True
            )
            extractor = CLIPImageProcessor.from_pretrained(
                str(files.feature_extractor), local_files_only=True
            )
        except (OSError, ValueError) as error:
            raise SafetyCheckerError(
                f"cannot load the safety checker from {files.source}: {error}"
            ) from error
        model.to(placement.device)
        model.eval()
        log.info("safety checker from %s on %s", files.source, placement.device)
        return cls(model, extractor, placement, files.source)

    def flagged(self, images: list[Image.Image]) -> list[bool]:
        """Which of `images` the checker flags as NSFW, in one batched call."""
        if not images:
            return []
        import numpy as np
        import torch

        pixels = self.feature_extractor(
            [image.convert("RGB") for image in images], return_tensors="pt"
        ).pixel_values
        clip_input = pixels.to(self.placement.device, dtype=self.placement.dtype)
        # The checker blacks out flagged entries of `images`; we make our own placeholder, so
        # it gets 1-pixel stand-ins instead of copies of the pictures.
        stand_ins = [np.zeros((1, 1, 3)) for _ in images]
        with torch.inference_mode():
            _, flags = self.model(clip_input=clip_input, images=stand_ins)
        return [bool(flag) for flag in flags]
