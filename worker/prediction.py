"""What a single-file checkpoint's UNet predicts: the noise (epsilon) or the velocity (v).

An original-layout file does not store its parameterisation; sampling a v-model as epsilon (or
the reverse) gives grey mush, so the worker decides from the best evidence there is, in order:

1. the volunteer's setting for the model (`predictions` table, `--prediction NAME=v_prediction`);
2. a marker in the file: a `v_pred` tensor (the key trainers such as kohya's and ComfyUI's
   savers add to v-models), or the safetensors metadata `modelspec.prediction_type`
   (Stability's model spec: `v` or `epsilon`);
3. the model reference's entry: its files name the original inference config, and
   `v2-inference-v.yaml` is the 768 px v-model's (`v1-inference.yaml`, `v2-inference.yaml`
   and the SDXL ones are epsilon);
4. the file name of a checkpoint Stability released (`v2-1_512-ema-pruned` is epsilon,
   `v2-1_768-ema-pruned` v, ...): exact names only, since a fine-tune's name says nothing sure;
5. the family: SD 2.x files are the 768 px v-model (stable-diffusion-2/2.1 and most SD 2
   fine-tunes), its inpainting model and every SD 1.x and SDXL base are epsilon.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import PurePosixPath

from horde_worker.checkpoint_kind import CheckpointKind, Family


class Prediction(str, Enum):
    EPSILON = "epsilon"
    V = "v_prediction"


@dataclass(frozen=True)
class PredictionChoice:
    prediction: Prediction
    reason: str  # where the decision came from, for the start log


_METADATA_KEY = "modelspec.prediction_type"
_METADATA_VALUES = {
    "v": Prediction.V,
    "v_prediction": Prediction.V,
    "v-prediction": Prediction.V,
    "epsilon": Prediction.EPSILON,
    "eps": Prediction.EPSILON,
}


def from_file(keys: set[str], metadata: dict[str, str]) -> PredictionChoice | None:
    if "v_pred" in keys:
        return PredictionChoice(Prediction.V, "the file's v_pred marker")
    declared = metadata.get(_METADATA_KEY, "").strip().lower()
    if declared in _METADATA_VALUES:
        return PredictionChoice(
            _METADATA_VALUES[declared], f"the file's metadata {_METADATA_KEY}={declared}"
        )
    return None


# The SD 2 checkpoints Stability released, by file stem (the 512 px ones are epsilon).
_RELEASED_SD2 = {
    "512-base-ema": Prediction.EPSILON,
    "v2-1_512-ema-pruned": Prediction.EPSILON,
    "v2-1_512-nonema-pruned": Prediction.EPSILON,
    "768-v-ema": Prediction.V,
    "v2-1_768-ema-pruned": Prediction.V,
    "v2-1_768-nonema-pruned": Prediction.V,
}


def from_file_name(kind: CheckpointKind, stem: str) -> PredictionChoice | None:
    known = _RELEASED_SD2.get(stem.lower()) if kind.family is Family.SD2 else None
    if known is None:
        return None
    return PredictionChoice(known, f"the released SD 2 file name {stem}")


def from_reference_files(paths: list[str]) -> Prediction | None:
    """The prediction the original inference config among a reference entry's files names."""
    configs = [PurePosixPath(p).name.lower() for p in paths if p.lower().endswith(".yaml")]
    if not configs:
        return None
    if any(name.endswith("-v.yaml") for name in configs):
        return Prediction.V
    return Prediction.EPSILON


def decide(
    kind: CheckpointKind,
    keys: set[str],
    metadata: dict[str, str],
    setting: Prediction | None = None,
    reference: Prediction | None = None,
    stem: str = "",
) -> PredictionChoice:
    if setting is not None:
        return PredictionChoice(setting, "the worker's predictions setting")
    marked = from_file(keys, metadata)
    if marked is not None:
        return marked
    if reference is not None:
        return PredictionChoice(reference, "the model reference's inference config")
    named = from_file_name(kind, stem)
    if named is not None:
        return named
    if kind.family is Family.SD2 and not kind.inpainting:
        return PredictionChoice(
            Prediction.V, "SD 2.x default (the 768 px v-model; set predictions to change it)"
        )
    return PredictionChoice(Prediction.EPSILON, f"{kind.name} default")
