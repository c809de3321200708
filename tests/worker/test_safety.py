"""The NSFW safety checker (worker/safety.py): where it is found, what it flags, and that only
jobs asking for the censor run it. A tiny random-weight checker (tiny_safety.py) whose
thresholds make it flag every image, or none."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from horde_protocol import PopPayload, PopReply
from horde_worker.config import ConfigError, load_settings
from horde_worker.device import resolve_placement
from horde_worker.features import Features
from horde_worker.generate import generate
from horde_worker.job import Capabilities, JobRejected, job_from_pop
from horde_worker.models import LoadedModel, load_pipeline
from horde_worker.safety import (
    PLACEHOLDER_RGB,
    SafetyChecker,
    SafetyCheckerError,
    checker_files,
    find_checker,
)
from tests.helpers.live_worker import test_cache_dir as cache_dir
from tests.worker.tiny_safety import FLAG_ALL, FLAG_NONE, write_safety_checker

CPU = resolve_placement("cpu", "fp32")
MODEL = "krita-horde-tiny"


@pytest.fixture(scope="module")
def flagging_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_safety_checker(tmp_path_factory.mktemp("flag-all"), threshold=FLAG_ALL)


@pytest.fixture(scope="module")
def passing_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_safety_checker(tmp_path_factory.mktemp("flag-none"), threshold=FLAG_NONE)


class CountingChecker(SafetyChecker):
    """The real checker, counting its calls (to prove when it is not run)."""

    def __init__(self, real: SafetyChecker) -> None:
        super().__init__(real.model, real.feature_extractor, real.placement, real.source)
        self.calls = 0

    def flagged(self, images: list[Image.Image]) -> list[bool]:
        self.calls += 1
        return super().flagged(images)


def load(folder: Path) -> CountingChecker:
    files = checker_files(folder)
    assert files is not None
    return CountingChecker(SafetyChecker.load(files, CPU))


def censor_pop(censor: bool = True, n: int = 1) -> PopReply:
    payload = {"prompt": "a fox", "ddim_steps": 2, "seed": "7", "sampler_name": "k_euler"}
    payload.update(width=64, height=96, use_nsfw_censor=censor, n_iter=n)
    ids = [f"img-{index}" for index in range(n)]
    return PopReply(id=ids[0], ids=ids, model=MODEL, payload=PopPayload.model_validate(payload))


def run(model: LoadedModel, checker: SafetyChecker | None, **pop: Any) -> Any:
    capabilities = Capabilities((MODEL,), 512 * 512, True, True, nsfw_censor=checker is not None)
    job = job_from_pop(censor_pop(**pop), capabilities)
    return generate(job, model, features=Features(safety=checker))


def is_placeholder(image: Image.Image) -> bool:
    return bool((np.asarray(image) == np.array(PLACEHOLDER_RGB, dtype=np.uint8)).all())


# ---- what it flags ----


def test_the_thresholds_decide_the_verdict(flagging_dir: Path, passing_dir: Path) -> None:
    images = [Image.new("RGB", (64, 96), (200, 30, 30)), Image.new("RGB", (128, 64))]
    assert load(flagging_dir).flagged(images) == [True, True]
    assert load(passing_dir).flagged(images) == [False, False]


def test_a_flagged_batch_becomes_placeholders_of_the_same_size_marked_censored(
    tiny_model: LoadedModel, flagging_dir: Path
) -> None:
    checker = load(flagging_dir)
    outcome = run(tiny_model, checker, n=2)
    assert checker.calls == 1, "one checker call per batch"
    for generated in outcome.images:
        assert generated.censored
        assert generated.image.size == (64, 96)
        assert is_placeholder(generated.image), "nothing of the original may remain"


def test_an_image_not_flagged_is_kept(tiny_model: LoadedModel, passing_dir: Path) -> None:
    checker = load(passing_dir)
    [generated] = run(tiny_model, checker).images
    [plain] = run(tiny_model, None, censor=False).images
    assert checker.calls == 1 and not generated.censored
    assert np.array_equal(np.asarray(generated.image), np.asarray(plain.image))


def test_a_job_without_use_nsfw_censor_never_runs_the_checker(
    tiny_model: LoadedModel, flagging_dir: Path
) -> None:
    checker = load(flagging_dir)
    [generated] = run(tiny_model, checker, censor=False).images
    assert checker.calls == 0
    assert not generated.censored and not is_placeholder(generated.image)


def test_a_censor_job_is_refused_by_a_worker_without_a_checker() -> None:
    capabilities = Capabilities((MODEL,), 512 * 512, True, True, nsfw_censor=False)
    with pytest.raises(JobRejected, match="no safety checker"):
        job_from_pop(censor_pop(), capabilities)
    # And if one got through anyway, no unchecked image would leave generate.
    with_checker = Capabilities((MODEL,), 512 * 512, True, True, nsfw_censor=True)
    job = job_from_pop(censor_pop(), with_checker)
    with pytest.raises(ValueError, match="no safety checker is loaded"):
        Features().nsfw_flags([Image.new("RGB", (8, 8))], job)


# ---- where it comes from ----


def test_both_layouts_are_found(tmp_path: Path, passing_dir: Path) -> None:
    side_by_side = write_safety_checker(tmp_path / "flat", threshold=FLAG_NONE, nested=False)
    for folder in (passing_dir, side_by_side):
        files = checker_files(folder)
        assert files is not None and (files.checker / "config.json").is_file()
    assert checker_files(tmp_path) is None


def test_a_configured_folder_without_a_checker_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"safety_checker: .*no safety checker there"):
        load_settings(models={MODEL: "tiny"}, safety_checker=tmp_path)


@pytest.fixture(scope="module")
def model_with_checker(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model as an SD 1.x diffusers folder with its own checker, listed in the index."""
    folder = tmp_path_factory.mktemp("model") / "sd-with-checker"
    shutil.copytree(tiny_model_dir, folder)
    write_safety_checker(folder, threshold=FLAG_ALL)
    index = json.loads((folder / "model_index.json").read_text())
    index["safety_checker"] = ["stable_diffusion", "StableDiffusionSafetyChecker"]
    index["feature_extractor"] = ["transformers", "CLIPImageProcessor"]
    index["requires_safety_checker"] = True
    (folder / "model_index.json").write_text(json.dumps(index))
    return folder


def test_a_model_folder_shipping_a_checker_provides_it_once_outside_the_pipeline(
    model_with_checker: Path, passing_dir: Path
) -> None:
    settings = load_settings(models={"sd": str(model_with_checker)}, cache_dir=cache_dir())
    features = Features.load(settings, CPU)
    assert features.safety is not None and features.nsfw_censor
    assert features.safety.source == f"model sd ({model_with_checker})"
    # Left inside the pipeline it would black out the images of every job.
    pipeline = load_pipeline(str(model_with_checker), CPU, cache_dir())
    assert pipeline.safety_checker is None
    # The volunteer's configured folder comes first.
    files = find_checker(passing_dir, {"sd": str(model_with_checker)})
    assert files is not None and files.source == str(passing_dir)


def test_no_checker_anywhere_means_none(tiny_model_dir: Path) -> None:
    # The tiny pipeline folder itself ships none (its checker lives beside it).
    assert find_checker(None, {"plain": str(tiny_model_dir), "hub": "owner/model"}) is None
    with pytest.raises(SafetyCheckerError):
        find_checker(tiny_model_dir, {})


def test_the_tiny_model_serves_with_a_tiny_checker_that_flags_nothing() -> None:
    """So the demo and the tests that send censored requests through a `tiny` worker take the
    path of a real worker with a checker."""
    files = find_checker(None, {"plain": "owner/model", MODEL: "tiny"}, cache_dir())
    assert files is not None and "flags nothing" in files.source
    checker = SafetyChecker.load(files, CPU)
    assert checker.flagged([Image.new("RGB", (64, 64), (250, 200, 180))]) == [False]


# ---- horde-worker check ----


@pytest.mark.parametrize("with_checker", [True, False])
def test_check_says_which_case_applies(
    with_checker: bool,
    passing_dir: Path,
    tiny_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import horde_worker.cli as cli

    # The command reconfigures logging for a terminal; the test's log capture stays as it is.
    monkeypatch.setattr(cli, "_setup_logging", lambda level: None)
    # A model folder without a checker of its own; the configured checker when asked.
    checker = {"safety_checker": passing_dir} if with_checker else {}
    settings = load_settings(
        models={MODEL: str(tiny_model_dir)}, cache_dir=cache_dir(), device="cpu", **checker
    )
    assert cli.command_check(settings) == cli.EXIT_OK
    out = capsys.readouterr().out
    if with_checker:
        assert f"safety checker: {passing_dir} (ran in " in out
        assert "no safety checker" not in out
    else:
        assert "no safety checker: jobs that ask for censorship will not be sent here" in out
