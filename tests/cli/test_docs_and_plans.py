"""docs/cli.md's transform tables are the code's; frame plans; settings and the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from horde_client.cli import app
from horde_client.errors import UsageError
from horde_client.frames import FrameKind, FramePlan, load_or_create
from horde_client.settings import load_settings
from horde_client.transforms import TRANSFORMS, TransformKind

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
_ROW = re.compile(r"^\| `(\w+)` \| ((?:\([\d.]+, [\d.]+\) ?)+) \| (.+) \|$")


def test_the_documented_transforms_are_the_ones_sent() -> None:
    documented = {}
    for line in DOC.read_text().splitlines():
        match = _ROW.match(line)
        if match:
            pairs = tuple(
                (float(scale), float(strength))
                for scale, strength in re.findall(r"\(([\d.]+), ([\d.]+)\)", match.group(2))
            )
            documented[match.group(1)] = (pairs, match.group(3))
    assert documented == {
        name: (transform.pairs, transform.purpose) for name, transform in TRANSFORMS.items()
    }
    single = [t.name for t in TRANSFORMS.values() if t.kind is TransformKind.SINGLE]
    assert single == ["normal", "shake", "focus", "unfocus", "unstuck"]


def _plan(kind: FrameKind, **changes: object) -> FramePlan:
    values: dict[str, object] = {
        "kind": kind, "prompt": "a forest", "to_prompt": "a desert" if kind == "animate" else None,
        "frames": 7, "walk": 3, "width": 64, "height": 64, "steps": 4, "cfg_scale": 7.5,
        "sampler": "k_euler",
    }  # fmt: skip
    values.update(changes)
    return FramePlan.model_validate(values)


def test_a_dream_walks_from_seed_to_seed() -> None:
    plan = _plan(FrameKind.DREAM).with_seeds(100)
    walked = [
        (spec.seed, spec.interpolation.to_seed, round(spec.interpolation.seed_t, 3))
        for spec in map(plan.frame_spec, range(plan.frames))
        if spec.interpolation is not None
    ]
    assert walked == [
        (100, "101", 0.0), (100, "101", 0.333), (100, "101", 0.667),
        (101, "102", 0.0), (101, "102", 0.333), (101, "102", 0.667),
        (102, "103", 0.0),
    ]  # fmt: skip


def test_an_animation_keeps_its_seed_and_walks_the_prompt() -> None:
    plan = _plan(FrameKind.ANIMATE, frames=5).with_seeds(9)
    specs = [plan.frame_spec(k) for k in range(5)]
    assert {spec.seed for spec in specs} == {9}
    assert [spec.interpolation.prompt_t for spec in specs] == [0, 0.25, 0.5, 0.75, 1.0]
    assert {spec.interpolation.to_prompt for spec in specs} == {"a desert"}


def test_a_resumed_plan_keeps_its_seeds_and_refuses_another(tmp_path: Path) -> None:
    first = load_or_create(tmp_path, _plan(FrameKind.DREAM), None)
    again = load_or_create(tmp_path, _plan(FrameKind.DREAM), None)
    assert again.seeds == first.seeds and len(first.seeds) == 4
    with pytest.raises(UsageError, match="holds another dream"):
        load_or_create(tmp_path, _plan(FrameKind.DREAM, frames=8), None)


def test_the_key_comes_from_the_environment_or_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "cli.toml"
    config.write_text('apikey = "from-the-file-0123456789"\nsize = 128\n')
    monkeypatch.setenv("HORDE_CLI_CONFIG", str(config))
    monkeypatch.delenv("HORDE_APIKEY", raising=False)
    assert load_settings().apikey.get_secret_value() == "from-the-file-0123456789"
    assert load_settings(size=256).size == 256  # the command line wins over the file
    monkeypatch.setenv("HORDE_APIKEY", "from-the-env-0123456789")
    settings = load_settings()
    assert settings.apikey.get_secret_value() == "from-the-env-0123456789"
    assert settings.size == 128
    shown = CliRunner().invoke(app, ["config"])
    assert "apikey = (set)" in shown.stdout and "from-the-env" not in shown.stdout


def test_there_is_no_key_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HORDE_CLI_CONFIG", str(tmp_path / "none.toml"))
    result = CliRunner().invoke(app, ["--apikey", "secret", "status"])
    assert result.exit_code == 2 and "No such option" in result.output


def test_bad_settings_say_what_is_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "cli.toml"
    config.write_text('size = 100\nsampler = "fast"\n')
    monkeypatch.setenv("HORDE_CLI_CONFIG", str(config))
    with pytest.raises(UsageError) as caught:
        load_settings()
    assert "size: Value error, must be a multiple of 64" in str(caught.value)
    assert "unknown sampler 'fast'" in str(caught.value) and str(config) in str(caught.value)
