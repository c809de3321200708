"""The `horde-worker` process itself: signals, exit codes, the job log line, the CLI."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from horde_protocol import GenerationState
from horde_worker.config import WorkerSettings
from horde_worker.tiny_model import TINY_MODEL_NAME
from tests.helpers.live_worker import ROOT, start_worker
from tests.worker.conftest import TEST_KEY
from tests.worker.stub_horde import StubHorde

pytestmark = pytest.mark.slow


def test_sigterm_mid_job_finishes_submits_and_exits_0(
    stub: StubHorde, tmp_path: Path, tiny_model_dir: Path
) -> None:
    job_id = stub.add_job(steps=80, width=128, height=128)
    with start_worker(tmp_path, stub.url, TEST_KEY) as worker:
        stub.wait_for(lambda: any(p.id == job_id for p in stub.progress), timeout=120)
        assert worker.stop(timeout=180) == 0
        log = worker.log_text()
    # The signal arrived while the job ran, and the job was still finished.
    assert log.index("received SIGTERM") < log.index(f"job {job_id} ")
    assert [(s.id, s.state) for s in stub.submits] == [(job_id, GenerationState.OK)]
    line = re.search(rf"job {job_id} (\S+) model=(\S+) size=(\S+) steps=(\d+) .*state=(\w+)", log)
    assert line is not None, log
    assert line.groups() == ("txt2img", TINY_MODEL_NAME, "128x128", "80", "ok")
    assert re.search(rf"job {job_id} .* seconds=[\d.]+ it/s=[\d.]+", log)
    assert TEST_KEY not in log, "the API key must never be logged"
    assert "summary:" in log


def test_second_signal_aborts_the_job_as_faulted(
    stub: StubHorde, tmp_path: Path, tiny_model_dir: Path
) -> None:
    job_id = stub.add_job(steps=500, width=128, height=128)
    with start_worker(tmp_path, stub.url, TEST_KEY) as worker:
        stub.wait_for(lambda: any(p.id == job_id for p in stub.progress), timeout=120)
        worker.signal(signal.SIGINT)
        worker.wait_for_log("stopping: no new jobs")
        worker.signal(signal.SIGINT)
        assert worker.process.wait(timeout=180) == 0
    [submit] = stub.submits
    assert (submit.id, submit.state) == (job_id, GenerationState.FAULTED)
    assert max(p.step for p in stub.progress) < 500


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "horde_worker.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT)},
    )


def test_help_documents_every_option() -> None:
    """The help comes from the settings (pydantic-settings' CLI): every option has its flag, its
    description, and the rule that names its environment variable."""
    top = _cli("--help")
    assert top.returncode == 0
    assert all(command in top.stdout for command in ("run", "check", "build-tiny-model"))
    assert "HORDE_WORKER_<OPTION>" in top.stdout
    for command in ("run", "check"):
        result = _cli(command, "--help")
        assert result.returncode == 0
        assert "HORDE_WORKER_<OPTION>" in result.stdout
        for name, field in WorkerSettings.model_fields.items():
            assert "--" + name.replace("_", "-") in result.stdout, f"--{name} missing"
            assert (field.description or "").split(" ")[0] in result.stdout
        # A table (models, controlnets) also reads one entry per flag: --model NAME=SOURCE.
        assert "--model " in result.stdout and "--controlnet " in result.stdout
        assert "--config" in result.stdout


def test_config_errors_exit_2_with_the_reasons() -> None:
    result = _cli("run", "--controlnet", "broken", "--api-key", "k", "--threads", "99")
    assert result.returncode == 2
    assert "--controlnet 'broken': expected NAME=SOURCE" in result.stderr
    # A bare model name is a name of the model reference, not a mistake.
    result = _cli("run", "--model", "stable_diffusion", "--api-key", "k", "--threads", "99")
    assert result.returncode == 2
    assert "expected NAME=SOURCE" not in result.stderr
    result = _cli("run", "--model", "m=tiny", "--threads", "99")
    assert result.returncode == 2
    assert "threads: Input should be less than or equal to 10" in result.stderr
    result = _cli("run", "--model", "m=tiny")
    assert result.returncode == 2
    assert "api_key: missing" in result.stderr


def test_check_and_build_tiny_model(tmp_path: Path, tiny_model_dir: Path) -> None:
    built = tmp_path / "tiny"
    result = _cli("build-tiny-model", str(built))
    assert result.returncode == 0, result.stderr
    assert (built / "model_index.json").is_file()
    # Deterministic: the same weights as the cached build.
    unet = "unet/diffusion_pytorch_model.safetensors"
    assert (built / unet).read_bytes() == (tiny_model_dir / unet).read_bytes()
    result = _cli("check", "--model", f"mine={built}", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    for mode in ("txt2img", "img2img", "inpainting"):
        assert f"ok   mine {mode} 64x64" in result.stdout
