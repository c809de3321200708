"""What a single-file model predicts (epsilon or v): the volunteer's setting, the file's
markers, the model reference, the family default — decided in that order, and carried into the
scheduler of the loaded pipeline and of every sampler made from it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from horde_worker.checkpoint_kind import CheckpointKind, Family
from horde_worker.config import load_settings
from horde_worker.device import resolve_placement
from horde_worker.model_reference import parse_reference
from horde_worker.models import ModelRegistry
from horde_worker.prediction import Prediction, decide, from_reference_files
from tests.worker.original_layout import write_original_checkpoint
from tests.worker.tiny_families import build_components

SD2 = CheckpointKind(Family.SD2, False)


@pytest.mark.parametrize(
    ("kind", "keys", "metadata", "setting", "reference", "expected", "reason"),
    [
        (SD2, set(), {}, None, None, Prediction.V, "SD 2.x default"),
        (CheckpointKind(Family.SD2, True), set(), {}, None, None, Prediction.EPSILON, "default"),
        (CheckpointKind(Family.SDXL, False), set(), {}, None, None, Prediction.EPSILON, "default"),
        (SD2, set(), {}, None, Prediction.EPSILON, Prediction.EPSILON, "model reference"),
        (
            SD2,
            set(),
            {"modelspec.prediction_type": "epsilon"},
            None,
            Prediction.V,
            Prediction.EPSILON,
            "modelspec.prediction_type=epsilon",
        ),
        (
            CheckpointKind(Family.SDXL, False),
            {"v_pred", "ztsnr"},
            {"modelspec.prediction_type": "epsilon"},
            None,
            None,
            Prediction.V,
            "v_pred marker",
        ),
        (
            CheckpointKind(Family.SD1, False),
            {"v_pred"},
            {},
            Prediction.EPSILON,
            None,
            Prediction.EPSILON,
            "setting",
        ),
    ],
)
def test_the_decision_takes_the_best_evidence_first(
    kind: CheckpointKind,
    keys: set[str],
    metadata: dict[str, str],
    setting: Prediction | None,
    reference: Prediction | None,
    expected: Prediction,
    reason: str,
) -> None:
    choice = decide(kind, keys, metadata, setting, reference)
    assert choice.prediction is expected
    assert reason in choice.reason


@pytest.mark.parametrize(
    ("stem", "expected", "reason"),
    [
        ("v2-1_512-ema-pruned", Prediction.EPSILON, "released SD 2 file name"),
        ("768-v-ema", Prediction.V, "released SD 2 file name"),
        # Only Stability's exact names: a fine-tune's "512" says nothing sure.
        ("my-512-finetune", Prediction.V, "SD 2.x default"),
    ],
)
def test_released_sd2_file_names_tell(stem: str, expected: Prediction, reason: str) -> None:
    choice = decide(SD2, set(), {}, stem=stem)
    assert (choice.prediction, reason in choice.reason) == (expected, True)
    # Any stronger evidence comes first.
    assert decide(SD2, {"v_pred"}, {}, stem=stem).prediction is Prediction.V


def test_the_reference_names_the_inference_config() -> None:
    # Entries as the public reference writes them (stable_diffusion.json).
    entries = {
        "stable_diffusion_2.1": ["model_2_1.ckpt", "v2-inference-v.yaml"],
        "stable_diffusion_2_inpainting": ["sd2inp.ckpt", "v2-inpainting-inference.yaml"],
        "stable_diffusion": ["model_1_5.ckpt", "v1-inference.yaml"],
        "no config": ["model.safetensors"],
    }
    assert [from_reference_files(paths) for paths in entries.values()] == [
        Prediction.V,
        Prediction.EPSILON,
        Prediction.EPSILON,
        None,
    ]
    reference = parse_reference(
        {
            name: {
                "config": {"files": [{"path": p} for p in paths], "download": []},
            }
            for name, paths in entries.items()
        }
    )
    assert reference["stable_diffusion_2.1"].prediction is Prediction.V
    assert reference["no config"].prediction is None


@pytest.fixture(scope="module")
def sd2_components(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_components(SD2, tmp_path_factory.mktemp("build"), tiny=True)


def _loaded_prediction(tmp_path: Path, **settings: Any) -> tuple[str, str]:
    """The prediction type of the loaded pipeline's scheduler and of a sampler made from it."""
    registry = ModelRegistry(
        load_settings(cache_dir=tmp_path / "cache", **settings), resolve_placement("cpu", "fp32")
    )
    registry.load_all()
    model = registry.get("tiny-sd2")
    assert model is not None
    sampler = model.schedulers.fresh("k_euler", False, model.pipeline.scheduler.config)
    return model.pipeline.scheduler.config.prediction_type, sampler.config.prediction_type


def test_an_sd2_file_is_v_unless_its_metadata_or_released_name_says_otherwise(
    tmp_path: Path, sd2_components: dict[str, Any]
) -> None:
    plain = write_original_checkpoint(sd2_components, tmp_path / "plain.safetensors", "sd2")
    assert _loaded_prediction(tmp_path, models={"tiny-sd2": str(plain)}) == ("v_prediction",) * 2
    declared = write_original_checkpoint(
        sd2_components,
        tmp_path / "declared.safetensors",
        "sd2",
        metadata={"modelspec.prediction_type": "epsilon"},
    )
    assert _loaded_prediction(tmp_path, models={"tiny-sd2": str(declared)}) == ("epsilon",) * 2
    released = write_original_checkpoint(
        sd2_components, tmp_path / "v2-1_512-ema-pruned.safetensors", "sd2"
    )
    assert _loaded_prediction(tmp_path, models={"tiny-sd2": str(released)}) == ("epsilon",) * 2


def test_the_volunteers_setting_wins(tmp_path: Path, sd2_components: dict[str, Any]) -> None:
    marked = write_original_checkpoint(
        sd2_components, tmp_path / "marked.safetensors", "sd2", extra={"v_pred": torch.zeros(0)}
    )
    settings = {"models": {"tiny-sd2": str(marked)}}
    assert _loaded_prediction(tmp_path, **settings) == ("v_prediction",) * 2
    chosen = _loaded_prediction(tmp_path, **settings, predictions={"tiny-sd2": "epsilon"})
    assert chosen == ("epsilon",) * 2


def test_a_reference_model_takes_the_references_prediction(
    tmp_path: Path, sd2_components: dict[str, Any]
) -> None:
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    checkpoint = write_original_checkpoint(sd2_components, models_dir / "sd2.safetensors", "sd2")
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    reference = tmp_path / "stable_diffusion.json"
    entry = {
        "name": "tiny-sd2",
        "baseline": "stable diffusion 2",
        "config": {
            "files": [
                {"path": "sd2.safetensors", "sha256sum": digest},
                {"path": "v2-inference.yaml"},  # the 512 px epsilon SD 2 model's config
            ],
            "download": [
                # Never fetched: the file is in place with the right hash, and offline is on.
                {
                    "file_name": "sd2.safetensors",
                    "file_path": "",
                    "file_url": "http://127.0.0.1:9/x",
                }
            ],
        },
    }
    reference.write_text(json.dumps({"tiny-sd2": entry}), encoding="utf-8")
    loaded = _loaded_prediction(
        tmp_path,
        models={"tiny-sd2": "reference"},
        model_reference_url=str(reference),
        models_dir=models_dir,
        offline=True,
    )
    assert loaded == ("epsilon",) * 2


def test_a_prediction_for_a_model_not_served_is_refused() -> None:
    with pytest.raises(ValueError, match=r"predictions: other not among the configured models"):
        load_settings(models={"tiny-sd2": "tiny"}, predictions={"other": "epsilon"})
    with pytest.raises(ValueError, match="epsilon"):
        load_settings(models={"tiny-sd2": "tiny"}, predictions={"tiny-sd2": "v"})
