"""Single-file checkpoints of every family the public horde serves, written by the tests in the
real original layouts and loaded through the worker's own loading code, with no network.

How a tiny file meets configs shipped for full-size models: the loader does not take the
shipped configs as they are. It reads from the file's tensors every size they fix (channel
widths, blocks, layers, where attention is and how deep, the text encoders' widths and depths;
worker/checkpoint_arch.py) and keeps from the shipped config only what no tensor tells (norm
groups, sample size, activation, scheduler). So the path a tiny file takes here is the one a
real file takes: no test-only config, no monkeypatch. Two tests hold the two halves honest:

- `test_full_size_architectures_read_back_as_shipped` builds each family's full-size modules
  from the shipped configs on the meta device (shapes, no memory), writes their original-layout
  tensor shapes, and checks that what the loader reads back equals the shipped configs — so
  for a released model the reading changes nothing;
- `test_a_tiny_checkpoint_of_each_family_loads_and_generates` writes tiny random weights
  (tests/worker/tiny_families.py: the same configs with small widths) in the original layout
  (tests/worker/original_layout.py, the inverse of diffusers' converters), loads the file with
  every socket connection refused, checks every weight arrived where it came from, and
  generates a 64 px image through the worker's `generate` (inpainting variants: an inpainting
  job on the 9-channel UNet).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from horde_protocol import PopPayload, PopReply
from horde_worker.checkpoint_arch import architecture
from horde_worker.checkpoint_kind import CheckpointKind, Family, classify, detect_checkpoint
from horde_worker.device import resolve_placement
from horde_worker.generate import generate
from horde_worker.job import Capabilities, Mode, job_from_pop
from horde_worker.models import LoadedModel, load_pipeline
from tests.worker.images_util import box_mask, encode, striped
from tests.worker.original_layout import original_state_dict, write_original_checkpoint
from tests.worker.tiny_families import build_components

ALL_KINDS = [CheckpointKind(family, inpainting) for family in Family for inpainting in (0, 1)]


def _config_value(config: Any, key: str) -> Any:
    value = config[key] if isinstance(config, dict) else getattr(config, key)
    return list(value) if isinstance(value, tuple) else value


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda kind: kind.name)
def test_full_size_architectures_read_back_as_shipped(tmp_path: Path, kind: CheckpointKind) -> None:
    components = build_components(kind, tmp_path, tiny=False)
    shapes = {k: tuple(v.shape) for k, v in original_state_dict(components, kind.family).items()}
    if kind.family is Family.SD2:
        # The released SD 2 files hold OpenCLIP's 24th block, which SD 2 does not use.
        block = "cond_stage_model.model.transformer.resblocks."
        shapes |= {
            k.replace(f"{block}22.", f"{block}23."): v
            for k, v in shapes.items()
            if f"{block}22." in k
        }
    assert classify(shapes) == kind
    read = architecture(shapes, kind)
    assert set(read) == set(components)
    for component, values in read.items():
        config = components[component].config
        shipped = {key: _config_value(config, key) for key in values}
        assert values == shipped, component
    assert read["unet"]["in_channels"] == (9 if kind.inpainting else 4)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every socket connection is refused and recorded: loading must not need any."""
    attempts: list[Any] = []

    def refuse(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise OSError(f"the test forbids network access (to {address})")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    yield attempts
    assert attempts == []


def _job(kind: CheckpointKind) -> Any:
    payload: dict[str, Any] = {
        "prompt": "a red fox###blurry",
        "ddim_steps": 2,
        "seed": "7",
        "sampler_name": "k_euler",
        "width": 64,
        "height": 64,
    }
    extra: dict[str, Any] = {}
    if kind.inpainting:
        extra = {
            "source_image": encode(striped(64, 64)),
            "source_mask": encode(box_mask(64, 64)),
            "source_processing": "inpainting",
        }
    reply = PopReply(
        id="job-1", model=kind.name, payload=PopPayload.model_validate(payload), **extra
    )
    job = job_from_pop(reply, Capabilities((kind.name,), 512 * 512, True, True))
    assert job.mode is (Mode.INPAINTING if kind.inpainting else Mode.TXT2IMG)
    return job


def _weights(module: Any) -> dict[str, torch.Tensor]:
    # transformers 5 flattened CLIPTextModel (no text_model level); compare by the inner name.
    return {k.removeprefix("text_model."): v for k, v in module.state_dict().items()}


@pytest.mark.parametrize(
    ("kind", "suffix"),
    [
        (CheckpointKind(Family.SD1, False), ".safetensors"),
        (CheckpointKind(Family.SD2, False), ".safetensors"),
        (CheckpointKind(Family.SDXL, False), ".safetensors"),
        (CheckpointKind(Family.SD1, True), ".safetensors"),
        (CheckpointKind(Family.SD2, True), ".ckpt"),
        (CheckpointKind(Family.SDXL, True), ".safetensors"),
    ],
    ids=lambda value: value.name if isinstance(value, CheckpointKind) else value,
)
def test_a_tiny_checkpoint_of_each_family_loads_and_generates(
    tmp_path: Path, no_network: list[Any], kind: CheckpointKind, suffix: str
) -> None:
    components = build_components(kind, tmp_path / "build", tiny=True)
    path = write_original_checkpoint(components, tmp_path / f"tiny{suffix}", kind.family)
    assert detect_checkpoint(path) == kind
    pipeline = load_pipeline(str(path), resolve_placement("cpu", "fp32"), tmp_path / "cache")
    for name, module in components.items():
        loaded, written = _weights(getattr(pipeline, name)), _weights(module)
        assert loaded.keys() == written.keys(), name
        assert all(torch.equal(loaded[k], written[k]) for k in written), name
    outcome = generate(_job(kind), LoadedModel(name=kind.name, source=str(path), pipeline=pipeline))
    assert [image.image.size for image in outcome.images] == [(64, 64)]
    assert outcome.steps_run > 0
