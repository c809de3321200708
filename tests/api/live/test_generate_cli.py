"""`horde-api generate`: the small client submits, follows the request and saves WebP files."""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import image_b64
from tests.helpers.live_horde import LiveHorde, start_horde

pytestmark = pytest.mark.e2e


def _serve_jobs(horde: LiveHorde, key: str, count: int, process: subprocess.Popen) -> list[dict]:
    """Act as a worker until `count` jobs were done."""
    jobs: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    while len(jobs) < count:
        assert time.monotonic() < deadline, "the client's request never reached the queue"
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        job = httpx.post(
            f"{horde.api}/generate/pop", json={"name": "cli-worker"}, headers={"apikey": key}
        ).json()
        if job["id"] is None:
            time.sleep(0.05)
            continue
        reply = httpx.post(
            f"{horde.api}/generate/submit",
            json={"id": job["id"], "generation": image_b64(fmt="WEBP")},
            headers={"apikey": key},
        )
        assert reply.status_code == 200, reply.text
        jobs.append(job)
    return jobs


def _generate(horde: LiveHorde, key: str, out: Path, *extra: str) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "horde_api.cli", "generate", "--url", horde.url, "--apikey", key,
        "--prompt", "a red boat", "--width", "64", "--height", "64", "--steps", "4",
        "--out", str(out), *extra,
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_generate_saves_one_webp_per_image(tmp_path: Path) -> None:
    with start_horde(tmp_path) as horde:
        key = horde.create_user("artist")
        out = tmp_path / "out"
        process = _generate(horde, key, out, "--n", "2", "--seed", "5")
        jobs = _serve_jobs(horde, key, 2, process)
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert sorted(j["payload"]["seed"] for j in jobs) == ["5", "6"]
    paths = [Path(line) for line in stdout.split()]
    assert sorted(p.name for p in paths) == ["5.webp", "6.webp"]
    assert all(p.read_bytes()[8:12] == b"WEBP" for p in paths)
    assert key not in stderr


def test_generate_inpainting_sends_image_and_mask(tmp_path: Path) -> None:
    source, mask = tmp_path / "source.png", tmp_path / "mask.png"
    source.write_bytes(base64.b64decode(image_b64()))
    mask.write_bytes(base64.b64decode(image_b64(mode="L", color=255)))
    with start_horde(tmp_path) as horde:
        key = horde.create_user("artist")
        process = _generate(
            horde, key, tmp_path / "out", "--source-image", str(source), "--mask", str(mask),
            "--mode", "inpainting", "--denoise", "0.6",
        )  # fmt: skip
        (job,) = _serve_jobs(horde, key, 1, process)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert job["source_processing"] == "inpainting"
    assert base64.b64decode(job["source_mask"]) == mask.read_bytes()
    assert job["payload"]["denoising_strength"] == 0.6
