"""`horde-worker init` in a real terminal session (pexpect): the prompts, the written config
file and its mode, the key never shown, a bad answer asked again, and the check run after."""

from __future__ import annotations

import io
import json
import stat
import sys
from pathlib import Path

import pexpect
import tomllib

from horde_worker.tiny_model import TINY_MODEL_NAME
from tests.helpers import live_worker
from tests.worker.conftest import TEST_KEY
from tests.worker.stub_horde import StubHorde

HORDE_WORKER = Path(sys.executable).parent / "horde-worker"


def _reference(path: Path) -> Path:
    """A local model reference: one model small enough for any machine, one far too large."""

    def entry(name: str, size: int) -> dict[str, object]:
        file_name = f"{name}.safetensors"
        return {
            "name": name,
            "baseline": "stable_diffusion_1",
            "size_on_disk_bytes": size,
            "config": {
                "files": [{"path": file_name, "sha256sum": "ab" * 32}],
                "download": [
                    {"file_name": file_name, "file_path": "", "file_url": "http://127.0.0.1:9/x"}
                ],
            },
        }

    path.write_text(
        json.dumps(
            {"small-model": entry("small-model", 1000), "huge-model": entry("huge-model", 10**15)}
        )
    )
    return path


def test_init_asks_writes_a_private_config_and_checks_it(
    stub: StubHorde, tmp_path: Path, tiny_model_dir: Path
) -> None:
    reference = _reference(tmp_path / "reference.json")
    cache_dir = live_worker.test_cache_dir()
    transcript = io.StringIO()
    child = pexpect.spawn(
        str(HORDE_WORKER),
        ["init", "--model-reference-url", str(reference), "--cache-dir", str(cache_dir)],
        # No --config: the default path under XDG_CONFIG_HOME, the one run/check read.
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)},
        encoding="utf-8",
        timeout=60,
    )
    child.logfile_read = transcript
    child.expect_exact("Horde URL [http://127.0.0.1:7420]: ")
    child.sendline("example.org:7420")
    child.expect_exact(
        "must be an http:// or https:// URL such as http://host:7420, got 'example.org:7420';"
        " try again"
    )
    child.expect_exact("Horde URL [http://127.0.0.1:7420]: ")
    child.sendline(stub.url + "/api/v2")
    child.expect_exact("API key (hidden, not echoed): ")
    child.sendline(TEST_KEY)
    child.expect_exact("Worker name [")
    child.sendline("init-test")
    child.expect(r"Device: cpu \(CPU\), RAM [\d.]+ GiB total")
    child.expect_exact("Model to serve [1]: ")
    offered = child.before
    assert "small-model" in offered and "huge-model" not in offered
    assert f"1. {TINY_MODEL_NAME}" in offered
    child.sendline("1")
    child.expect_exact("Wrote ")
    child.expect(pexpect.EOF, timeout=600)
    child.close()
    text = transcript.getvalue()
    assert child.exitstatus == 0, text

    config = tmp_path / "horde-worker" / "config.toml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert tomllib.loads(config.read_text()) == {
        "horde_url": stub.url,  # /api/v2 taken off, like the settings do
        "api_key": TEST_KEY,
        "name": "init-test",
        "model_reference_url": str(reference),
        "cache_dir": str(cache_dir),
        "models": {TINY_MODEL_NAME: "tiny"},
    }
    assert f"ok   {TINY_MODEL_NAME} txt2img" in text
    assert f"ok   horde {stub.url} reachable" in text
    assert TEST_KEY not in text, "the API key must never be shown"
