"""Serving the public horde, a model is offered under a reference name only with the reference's
files (same sha256); a name the reference does not know stops the start. The reference is a
local file in the public reference's shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from horde_worker.config import load_settings
from horde_worker.models import ModelLoadError, ModelRegistry
from horde_worker.provision import Provisioner, ProvisionError
from horde_worker.public_names import is_public_horde
from tests.worker.file_server import sha256

CHECKPOINT = b"weights of the real stable_diffusion " * 100


def _reference(tmp_path: Path) -> Path:
    entry: dict[str, Any] = {
        "name": "stable_diffusion",
        "baseline": "stable_diffusion_1",
        "inpainting": False,
        "size_on_disk_bytes": len(CHECKPOINT),
        "config": {
            "files": [
                {"path": "model_1_5.safetensors", "sha256sum": sha256(CHECKPOINT)},
                {"path": "v1-inference.yaml"},
            ],
            "download": [
                {
                    "file_name": "model_1_5.safetensors",
                    "file_path": "",
                    "file_url": "http://127.0.0.1:9/model_1_5.safetensors",
                }
            ],
        },
    }
    path = tmp_path / "stable_diffusion.json"
    path.write_text(json.dumps({"stable_diffusion": entry}))
    return path


def _sources(tmp_path: Path, horde_url: str, models: dict[str, str]) -> dict[str, str]:
    settings = load_settings(
        horde_url=horde_url,
        models=models,
        model_reference_url=str(_reference(tmp_path)),
        cache_dir=tmp_path / "cache",
        models_dir=tmp_path / "models",
    )
    return Provisioner(settings).local_sources()


@pytest.mark.parametrize(
    ("url", "public"),
    [
        ("https://aihorde.net", True),
        ("https://stablehorde.net", True),
        ("https://dev.aihorde.net", True),
        ("http://127.0.0.1:7420", False),
        ("https://notaihorde.net", False),
    ],
)
def test_the_public_horde_is_recognised_by_its_host(url: str, public: bool) -> None:
    assert is_public_horde(url) is public


def test_a_file_with_the_reference_hash_is_offered_under_its_name(tmp_path: Path) -> None:
    checkpoint = tmp_path / "mine.safetensors"
    checkpoint.write_bytes(CHECKPOINT)
    sources = _sources(tmp_path, "https://aihorde.net", {"stable_diffusion": str(checkpoint)})
    assert sources == {"stable_diffusion": str(checkpoint)}


def test_a_file_with_another_hash_is_refused_under_a_reference_name(tmp_path: Path) -> None:
    checkpoint = tmp_path / "finetune.safetensors"
    checkpoint.write_bytes(CHECKPOINT + b"changed")
    with pytest.raises(ProvisionError) as caught:
        _sources(tmp_path, "https://aihorde.net", {"stable_diffusion": str(checkpoint)})
    message = str(caught.value)
    assert "the public horde gets a model name only with the model reference's files" in message
    assert f"stable_diffusion={checkpoint}: {checkpoint} is not the reference's" in message
    assert sha256(CHECKPOINT) in message


def test_names_the_reference_does_not_know_are_refused_all_at_once(tmp_path: Path) -> None:
    with pytest.raises(ProvisionError) as caught:
        _sources(tmp_path, "https://stablehorde.net", {"my-model": "tiny", "other": "tiny"})
    message = str(caught.value)
    for name in ("my-model=tiny", "other=tiny"):
        assert f"{name}: the public horde's model reference does not know this name" in message


def test_a_folder_cannot_stand_for_a_reference_name(tmp_path: Path, tiny_model_dir: Path) -> None:
    with pytest.raises(ProvisionError, match="cannot be matched with the reference's files"):
        _sources(tmp_path, "https://aihorde.net", {"stable_diffusion": str(tiny_model_dir)})


def test_our_own_horde_takes_any_name(tmp_path: Path) -> None:
    sources = _sources(tmp_path, "http://127.0.0.1:7420", {"my-model": "tiny"})
    assert sources == {"my-model": "tiny"}


def test_the_start_stops_before_loading_anything(tmp_path: Path) -> None:
    from horde_worker.device import resolve_placement

    settings = load_settings(
        horde_url="https://aihorde.net",
        models={"krita-horde-tiny": "tiny"},
        model_reference_url=str(_reference(tmp_path)),
        cache_dir=tmp_path / "cache",
    )
    registry = ModelRegistry(settings, resolve_placement("cpu", "fp32"))
    with pytest.raises(ModelLoadError, match="krita-horde-tiny=tiny: the public horde's model"):
        registry.load_all()
    assert registry.names == []
