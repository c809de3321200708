"""`./run demo --tls`: the whole local horde over HTTPS with a demo certificate authority."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers.live_horde import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_over_tls_makes_its_three_images(tmp_path: Path) -> None:
    output = tmp_path / "demo-output"
    run = subprocess.run(
        [
            sys.executable, str(ROOT / "scripts" / "demo.py"), "--tls", "--no-serve",
            "--port", str(free_port()), "--output", str(output),
        ],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "https://127.0.0.1:" in run.stdout
    for mode in ("txt2img", "img2img", "inpainting"):
        (image,) = (output / mode).glob("*.png")
        assert Image.open(image).format == "PNG"
    assert (output / "tls" / "ca.pem").is_file()
    assert "state=ok" in (output / "worker.log").read_text()
