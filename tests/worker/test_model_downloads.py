"""Models by name: the model reference's files fetched over plain HTTP from a local server the
tests start (resumed when the connection breaks, refused when the sha256 differs, never fetched
offline or onto a disk too small), then served."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from horde_worker.cli import main, parse_command
from horde_worker.config import load_settings
from horde_worker.downloads import DownloadError, DownloadStats, download_file, human_size
from horde_worker.model_reference import ModelReferenceError, parse_reference
from horde_worker.provision import Provisioner, ProvisionError
from tests.helpers.live_worker import ROOT
from tests.worker.file_server import (
    FileServer,
    publish_reference,
    reference_for_folder,
    serving,
    sha256,
)

NAME = "Tiny Reference"
UNET = f"/files/{NAME}/unet/diffusion_pytorch_model.safetensors"


@pytest.fixture
def server(tiny_model_dir: Path) -> Iterator[tuple[FileServer, str, dict[str, Any]]]:
    """The file server with the tiny pipeline published as the reference model NAME."""
    with serving() as files:
        entry, served = reference_for_folder(NAME, tiny_model_dir, files.url)
        files.files.update(served)
        url = publish_reference(files, {NAME: entry})
        yield files, url, entry


def _provisioner(tmp_path: Path, url: str, **overrides: Any) -> Provisioner:
    settings = load_settings(
        models={NAME: "reference"},
        model_reference_url=url,
        cache_dir=tmp_path / "cache",
        models_dir=tmp_path / "models",
        **overrides,
    )
    return Provisioner(settings)


def test_a_bare_model_flag_names_a_reference_model() -> None:
    command = parse_command(["check", "--model", "stable_diffusion", "--model", "t=tiny"])
    assert command.models == {"stable_diffusion": "reference", "t": "tiny"}  # type: ignore[attr-defined]


def test_a_reference_model_is_fetched_once_and_verified(
    tmp_path: Path, server: tuple[FileServer, str, dict[str, Any]], tiny_model_dir: Path
) -> None:
    files, url, entry = server
    provisioner = _provisioner(tmp_path, url)
    local = Path(provisioner.local_source(NAME, "reference"))
    assert local == tmp_path / "models" / NAME
    index = "model_index.json"
    assert (local / index).read_bytes() == (tiny_model_dir / index).read_bytes()
    assert provisioner.stats.bytes_fetched == entry["size_on_disk_bytes"]
    assert not list(local.rglob("*.part"))

    files.requests.clear()
    again = _provisioner(tmp_path, url)
    assert Path(again.local_source(NAME, "reference")) == local
    assert again.stats.bytes_fetched == 0
    # Only the reference is asked for again: the files are recognised by their hashes.
    assert [r.path for r in files.requests] == ["/stable_diffusion.json"]


def test_a_broken_download_resumes_with_a_range_request(
    tmp_path: Path, server: tuple[FileServer, str, dict[str, Any]]
) -> None:
    files, url, entry = server
    files.drop_once.add(UNET)
    provisioner = _provisioner(tmp_path, url)
    local = Path(provisioner.local_source(NAME, "reference"))
    first, second = files.gets(UNET)
    assert first.range is None
    size = len(files.files[UNET])
    # Resumed from what reached the disk: at most the half the server sent before it hung up.
    assert second.range is not None and second.range.startswith("bytes=")
    resumed_from = int(second.range.removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_from <= size // 2
    assert provisioner.stats.resumed == 1
    # Every byte crossed the network once: the first half was not fetched again.
    assert provisioner.stats.bytes_fetched == entry["size_on_disk_bytes"]
    assert sha256((local / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()) == sha256(
        files.files[UNET]
    )


def test_a_part_file_left_by_an_earlier_run_is_resumed(tmp_path: Path) -> None:
    data = bytes(range(256)) * 4096
    with serving({"/big.bin": data}) as files:
        files.drop_once.add("/big.bin")
        target = tmp_path / "big.bin"
        with pytest.raises(DownloadError, match=r"failed 1 times.*resume from the big.bin.part"):
            download_file(files.url + "/big.bin", target, sha256(data), attempts=1)
        kept = (tmp_path / "big.bin.part").stat().st_size
        assert 0 < kept <= len(data) // 2
        stats = DownloadStats()
        download_file(files.url + "/big.bin", target, sha256(data), stats=stats)
        assert files.gets("/big.bin")[-1].range == f"bytes={kept}-"
        assert stats.bytes_fetched == len(data) - kept
        assert target.read_bytes() == data


def test_a_file_whose_hash_does_not_match_is_refused_and_removed(
    tmp_path: Path, server: tuple[FileServer, str, dict[str, Any]]
) -> None:
    files, url, _ = server
    files.files[UNET] = files.files[UNET][:-4] + b"EVIL"  # substituted on the way
    provisioner = _provisioner(tmp_path, url)
    with pytest.raises(DownloadError) as caught:
        provisioner.local_source(NAME, "reference")
    message = str(caught.value)
    assert "diffusion_pytorch_model.safetensors: sha256" in message
    assert "does not match the reference's" in message
    assert "removed and is not served" in message
    unet = tmp_path / "models" / NAME / "unet"
    assert not (unet / "diffusion_pytorch_model.safetensors").exists()
    assert not (unet / "diffusion_pytorch_model.safetensors.part").exists()


def test_offline_names_what_is_missing_and_makes_no_request(
    tmp_path: Path, server: tuple[FileServer, str, dict[str, Any]]
) -> None:
    files, url, _ = server
    with pytest.raises(ModelReferenceError, match="offline: the model reference is not cached"):
        _provisioner(tmp_path, url, offline=True).local_source(NAME, "reference")
    assert files.requests == []

    _provisioner(tmp_path, url).reference()  # an earlier online start kept the reference
    files.requests.clear()
    with pytest.raises(ProvisionError) as caught:
        _provisioner(tmp_path, url, offline=True).local_source(NAME, "reference")
    message = str(caught.value)
    assert f"offline: model '{NAME}' is not downloaded" in message
    assert "unet/diffusion_pytorch_model.safetensors" in message
    assert "start once without --offline" in message
    assert files.requests == []


def test_not_enough_disk_space_is_refused_before_any_file_byte(
    tmp_path: Path, server: tuple[FileServer, str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    files, url, entry = server
    monkeypatch.setattr(
        "horde_worker.downloads.shutil.disk_usage",
        lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000),  # type: ignore[attr-defined]
    )
    with pytest.raises(DownloadError) as caught:
        _provisioner(tmp_path, url).local_source(NAME, "reference")
    assert "not enough disk space for model 'Tiny Reference'" in str(caught.value)
    assert f"it needs {human_size(entry['size_on_disk_bytes'])}, 1.0 KB free" in str(caught.value)
    assert [r.path for r in files.requests] == ["/stable_diffusion.json"]


def test_a_name_the_reference_does_not_know_is_refused(
    tmp_path: Path, server: tuple[FileServer, str, dict[str, Any]]
) -> None:
    _, url, _ = server
    with pytest.raises(ModelReferenceError, match="'Tiny' is not in the model reference") as caught:
        _provisioner(tmp_path, url).local_source("Tiny", "reference")
    assert "similar names: Tiny Reference" in str(caught.value)


def test_reference_entries_that_would_leave_the_models_folder_are_left_out() -> None:
    entry = {
        "name": "evil",
        "config": {
            "files": [{"path": "../../.bashrc", "sha256sum": "0" * 64}],
            "download": [{"file_name": ".bashrc", "file_path": "../..", "file_url": "http://x/"}],
        },
    }
    good = {
        "name": "good",
        "config": {
            "files": [{"path": "good.safetensors", "sha256sum": "A" * 64}],
            "download": [{"file_name": "good.safetensors", "file_path": "", "file_url": "u"}],
        },
    }
    models = parse_reference({"evil": entry, "good": good})
    assert list(models) == ["good"]
    assert models["good"].files[0].sha256 == "a" * 64


def test_models_lists_the_reference_and_what_is_here(
    tmp_path: Path,
    server: tuple[FileServer, str, dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, url, _ = server
    args = ["models", "--model-reference-url", url, "--cache-dir", str(tmp_path / "cache")]
    args += ["--models-dir", str(tmp_path / "models")]
    assert main(args) == 0
    listed = capsys.readouterr().out
    assert "1 models in" in listed
    assert NAME in listed and "stable_diffusion_1" in listed
    assert listed.rstrip().endswith("no")
    _provisioner(tmp_path, url).local_source(NAME, "reference")
    assert main(args) == 0
    assert capsys.readouterr().out.rstrip().endswith("yes")


@pytest.mark.slow
def test_check_fetches_a_reference_model_by_name_and_serves_it(
    tmp_path: Path, server: tuple[FileServer, str, dict[str, Any]]
) -> None:
    files, url, _ = server
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HORDE_WORKER_", "HF_"))}
    env["HF_HUB_CACHE"] = str(tmp_path / "hub")
    command = [sys.executable, "-m", "horde_worker.cli", "check", "--device", "cpu"]
    command += ["--model", NAME, "--model-reference-url", url]
    command += ["--cache-dir", str(tmp_path / "cache"), "--models-dir", str(tmp_path / "models")]
    result = subprocess.run(
        [*command, "--threads", "2"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    for mode in ("txt2img", "img2img", "inpainting"):
        assert f"ok   {NAME} {mode} 64x64" in result.stdout
    assert f"fetching model {NAME}:" in result.stderr
    assert "CPU: 2 jobs at once share the cores" in result.stderr

    files.requests.clear()
    result = subprocess.run(
        [*command, "--offline"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert files.requests == []  # offline: the kept reference and the verified files serve

    shutil.rmtree(tmp_path / "models")
    result = subprocess.run(
        [*command, "--offline"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 1
    assert f"offline: model '{NAME}' is not downloaded" in result.stderr
    assert files.requests == []
    json.loads((tmp_path / "cache" / "stable_diffusion.json").read_text())
