"""Every `/generate/async` body the CLI builds reaches a plain worker of the public horde.

The rules are the public horde's own (tests/fixtures/public_horde/routing.json, cited from its
source): some `params` keys keep a request from most workers by their mere presence, others by a
true value, and some top-level fields by a value other than the neutral one. A body here may only
trigger what its command means (a source image for img2img/inpainting), and n > 1 images of one
request must differ (`seed_variation`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from horde_client.explore import Exploration
from horde_client.frames import FrameKind, FramePlan
from horde_client.generate import generate_spec
from horde_client.payloads import build_body
from horde_client.settings import ClientSettings
from horde_client.transforms import TRANSFORMS
from horde_client.vary import plan_vary
from horde_protocol import GenerationInput
from tests.fixtures.public_horde import ROUTING_RULES, routing_reasons


def empty_values(value: Any, path: str = "") -> list[str]:
    """Paths of null or empty values: a field sent empty is a field not meant."""
    found = []
    if value is None or value in ([], {}, ""):
        return [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += empty_values(item, f"{path}.{key}")
    if isinstance(value, list):
        for index, item in enumerate(value):
            found += empty_values(item, f"{path}[{index}]")
    return found


def check_body(body: dict[str, Any]) -> None:
    GenerationInput.model_validate(body)
    assert routing_reasons(body) == [], body
    assert empty_values(body) == [], body
    params = body["params"]
    if params["n"] > 1:
        assert params["seed_variation"] == 1
    assert params["seed"].isdigit()  # our own seed: file names and metadata tell it
    if "source_image" in body:
        assert body["source_processing"] in ("img2img", "inpainting")
        assert ("source_mask" in body) == (body["source_processing"] == "inpainting")


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> ClientSettings:
    monkeypatch.setenv("HORDE_CLI_CONFIG", str(tmp_path / "none.toml"))
    return ClientSettings(model="stable_diffusion", size=64, steps=4, batch=3)


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    path = tmp_path / "picture.png"
    Image.new("RGB", (100, 70), (200, 40, 40)).save(path)
    return path


@pytest.mark.parametrize("n", [1, 2, 20])
def test_generate_bodies(settings: ClientSettings, picture: Path, tmp_path: Path, n: int) -> None:
    mask = tmp_path / "mask.png"
    Image.new("L", (100, 70), 255).save(mask)
    for image, mask_path in ((None, None), (picture, None), (picture, mask)):
        spec, _ = generate_spec(
            settings, "a red boat", negative="blurry", image=image, mask=mask_path, n=n
        )
        body = build_body(spec)
        check_body(body)
        assert body["prompt"] == "a red boat ### blurry"
    plain = build_body(generate_spec(settings, "a red boat", n=n)[0])
    assert set(plain) == {"prompt", "params", "models", "r2"}


def test_explore_bodies_over_a_whole_sweep(settings: ClientSettings) -> None:
    exploration = Exploration(
        prompt="a lighthouse",
        aspects=["square", "landscape", "portrait"],
        scales=[5.0, 7.5, 12.0],
        size=64,
        steps=4,
        sampler="k_euler",
        model=None,
        batch=3,
    )
    works = list(exploration.batches(count=28, seconds=None))
    assert sum(work.spec.n for work in works) == 28
    sizes = {(work.spec.width, work.spec.height) for work in works}
    assert sizes == {(64, 64), (128, 64), (64, 128)}
    for work in works:
        body = build_body(work.spec)
        check_body(body)
        assert "models" not in body  # none chosen: any model, as the public horde means it


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_vary_bodies_of_every_transform(settings: ClientSettings, picture: Path, name: str) -> None:
    plan, _ = plan_vary(settings, picture, TRANSFORMS[name], "at night", "a castle", 2)
    for pair in range(len(plan.transform.pairs)):
        body = build_body(plan.spec(pair))
        check_body(body)
        assert body["source_processing"] == "img2img"
        assert body["prompt"] == "a castle, at night"
        assert (body["params"]["width"], body["params"]["height"]) == (128, 64)  # snapped


def test_dream_and_animate_bodies_only_add_our_extension(settings: ClientSettings) -> None:
    """Their `interpolation` is our extension: the public horde would ignore it, which is why
    the CLI refuses to dream there (tests/cli/test_public_horde.py). Nothing else routes."""
    for kind, to_prompt in ((FrameKind.DREAM, None), (FrameKind.ANIMATE, "a desert")):
        plan = FramePlan(
            kind=kind, prompt="a forest", to_prompt=to_prompt, frames=5, walk=2, width=64,
            height=64, steps=4, cfg_scale=7.5, sampler="k_euler",
        ).with_seeds(100)  # fmt: skip
        for k in range(plan.frames):
            body = build_body(plan.frame_spec(k))
            interpolation = body["params"].pop("interpolation")
            check_body(body)
            assert set(interpolation) <= {"to_seed", "seed_t", "to_prompt", "prompt_t"}


def test_the_rules_catch_what_issue_23_saw() -> None:
    """The checker is not vacuous: the body of the old client (`loras: []`, no seed_variation)
    and a left-out `r2` fail it."""
    old = {"prompt": "p", "params": {"n": 2, "seed": "42", "loras": []}, "r2": False}
    assert routing_reasons(old) == [ROUTING_RULES["params_key_present"]["loras"]]
    assert empty_values(old) == [".params.loras"]
    assert routing_reasons({"prompt": "p", "params": {}}) == [
        ROUTING_RULES["top_level"]["r2"]["reason"]
    ]
    with pytest.raises(KeyError):
        check_body({"prompt": "p", "params": {"n": 2, "seed": "42"}, "r2": False})
