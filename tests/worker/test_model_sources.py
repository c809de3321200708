"""Model sources: a hub id already in the local Hugging Face cache loads without a request; with
--offline a missing one fails with a clear reason instead of downloading."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.live_worker import ROOT
from tests.worker.hub_server import serving_hub

pytestmark = pytest.mark.slow


def _check(
    *args: str, hub_cache: Path, endpoint: str = "http://127.0.0.1:9"
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HORDE_WORKER_", "HF_"))}
    env["HF_HUB_CACHE"] = str(hub_cache)
    # The hub is a local stand-in, or a closed local port: never the internet.
    env["HF_ENDPOINT"] = endpoint
    return subprocess.run(
        [sys.executable, "-m", "horde_worker.cli", "check", "--device", "cpu", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_hub_id_from_the_local_cache_and_a_missing_one(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    # The layout huggingface_hub keeps: models--owner--name/{refs/main, snapshots/<commit>/}.
    commit = "0" * 40
    repo = tmp_path / "hub" / "models--krita-horde--tiny-sd"
    shutil.copytree(tiny_model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    result = _check("--model", "cached=krita-horde/tiny-sd", hub_cache=tmp_path / "hub")
    assert result.returncode == 0, result.stderr
    assert "ok   cached txt2img 64x64" in result.stdout

    result = _check(
        "--offline", "--model", "absent=krita-horde/not-there", hub_cache=tmp_path / "hub"
    )
    assert result.returncode == 1
    assert "offline: hub model 'krita-horde/not-there' is not in the local" in result.stderr
    assert "start once without --offline to download it" in result.stderr


def test_a_hub_id_not_in_the_cache_is_fetched_once_then_served_offline(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    # Variants and original checkpoints beside the pipeline would multiply the download.
    extra = {"unet/diffusion_pytorch_model.fp16.safetensors": b"x" * 64, "v1-5.ckpt": b"y" * 64}
    with serving_hub("krita-horde/tiny-hub", tiny_model_dir, extra) as hub:
        result = _check(
            "--model", "hub=krita-horde/tiny-hub", hub_cache=tmp_path / "hub", endpoint=hub.url
        )
        assert result.returncode == 0, result.stderr
        assert "ok   hub txt2img 64x64" in result.stdout
        fetched = sorted(hub.file_gets())
        pipeline_files = sorted(name for name in hub.files if name not in extra)
        assert fetched == pipeline_files  # each once, and nothing else
        plan = f"fetching hub model krita-horde/tiny-hub: {len(pipeline_files)} file(s)"
        assert plan in result.stderr

        hub.requests.clear()
        result = _check(
            "--offline",
            "--model",
            "hub=krita-horde/tiny-hub",
            hub_cache=tmp_path / "hub",
            endpoint=hub.url,
        )
        assert result.returncode == 0, result.stderr
        assert hub.requests == []
