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

pytestmark = pytest.mark.slow


def _check(*args: str, hub_cache: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HORDE_WORKER_", "HF_"))}
    env["HF_HUB_CACHE"] = str(hub_cache)
    # Should anything try the hub, it meets a closed local port, never the internet.
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"
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
