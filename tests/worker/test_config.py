"""Settings from file, environment and flags, and the errors a volunteer sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from horde_worker.config import ConfigError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("HORDE_WORKER_"):
            monkeypatch.delenv(key)


def test_defaults() -> None:
    settings = load_settings(models={"m": "tiny"})
    assert settings.horde_url == "http://127.0.0.1:7420"
    assert (settings.max_pixels, settings.webp_quality, settings.threads) == (262144, 95, 1)
    assert (settings.device, settings.dtype, settings.attention) == ("auto", "auto", "sdpa")
    assert settings.allow_img2img and settings.allow_painting and not settings.nsfw


def test_file_then_env_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "worker.toml"
    config.write_text(
        'horde_url = "http://horde.example:7420/api/v2/"\n'
        'name = "from-file"\nmax_pixels = 1048576\nblacklist = ["gore"]\n'
        '[models]\nkrita-horde-tiny = "tiny"\n'
    )
    settings = load_settings(config)
    assert settings.horde_url == "http://horde.example:7420"  # API root pasted: tolerated
    assert (settings.name, settings.max_pixels, settings.blacklist) == (
        "from-file",
        1048576,
        ["gore"],
    )
    assert settings.models == {"krita-horde-tiny": "tiny"}
    monkeypatch.setenv("HORDE_WORKER_NAME", "from-env")
    monkeypatch.setenv("HORDE_WORKER_MODELS", '{"a": "tiny", "b": "tiny"}')
    monkeypatch.setenv("HORDE_WORKER_BLACKLIST", "x, y")
    settings = load_settings(config)
    # Model tables combine across sources (a name in a higher source wins); lists replace.
    assert (settings.name, sorted(settings.models), settings.blacklist) == (
        "from-env",
        ["a", "b", "krita-horde-tiny"],
        ["x", "y"],
    )
    settings = load_settings(config, name="from-flag", max_pixels=4096)
    assert (settings.name, settings.max_pixels) == ("from-flag", 4096)


def test_yaml_file(tmp_path: Path) -> None:
    config = tmp_path / "worker.yaml"
    config.write_text("threads: 2\nmodels:\n  krita-horde-tiny: tiny\n")
    assert load_settings(config).threads == 2


def test_api_key_is_never_shown(tmp_path: Path) -> None:
    settings = load_settings(api_key="super-secret-key-123")
    assert "super-secret-key-123" not in repr(settings)
    assert "super-secret-key-123" not in str(settings.model_dump())
    assert settings.require_api_key() == "super-secret-key-123"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"horde_url": "localhost:7420"}, "horde_url: must be an http:// or https:// URL"),
        ({"api_key": "0000000000"}, "api_key: the anonymous key cannot run a worker"),
        ({"models": {"m": "/no/such/dir"}}, "models: m=/no/such/dir: no such folder or file"),
        ({"models": {"m": "weights.ckpt"}}, "no such folder or file"),
        ({"max_pixels": 100}, "max_pixels: Input should be greater than or equal to 4096"),
        ({"webp_quality": 101}, "webp_quality"),
        ({"device": "gpu"}, "device: must be auto, cpu, mps, cuda or cuda:N"),
        ({"dtype": "fp8"}, "dtype: Input should be 'auto', 'fp16', 'bf16' or 'fp32'"),
        ({"retry_initial_delay": 5, "retry_max_delay": 1}, "retry_initial_delay must not exceed"),
        ({"colour": "blue"}, "colour: unknown option"),
    ],
)
def test_errors_say_what_is_wrong(overrides: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(**overrides)
    assert expected in str(error.value)


def test_folder_without_model_index_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no model_index\.json"):
        load_settings(models={"m": str(tmp_path)})


def test_missing_key_and_models_are_explained() -> None:
    settings = load_settings()
    with pytest.raises(ConfigError, match="api_key: missing; give --api-key"):
        settings.require_api_key()
    with pytest.raises(ConfigError, match="models: none configured; give --model NAME=SOURCE"):
        settings.require_models()


def test_bad_config_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "missing.toml")
    ini = tmp_path / "worker.ini"
    ini.write_text("x=1")
    with pytest.raises(ConfigError, match=r"unknown format; use a \.toml, \.yaml or \.yml"):
        load_settings(ini)
    broken = tmp_path / "broken.toml"
    broken.write_text("threads = = 2")
    with pytest.raises(ConfigError, match="invalid worker configuration"):
        load_settings(broken)


def test_the_file_init_writes_is_read_when_no_other_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from horde_worker.cli import parse_command
    from horde_worker.config import default_config_path

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    default = default_config_path()
    assert default == tmp_path / "horde-worker" / "config.toml"
    assert parse_command(["check"]).name != "from-default"  # type: ignore[attr-defined]
    default.parent.mkdir()
    default.write_text('name = "from-default"\n')
    assert parse_command(["check"]).name == "from-default"  # type: ignore[attr-defined]
    other = tmp_path / "other.toml"
    other.write_text('name = "from-other"\n')
    named = parse_command(["check", "--config", str(other)])
    assert named.name == "from-other"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("given", "expected"), [(True, "on"), (False, "off"), ("true", "on"), ("auto", "auto")]
)
def test_vae_tiling_is_auto_on_or_off_and_older_booleans_still_work(
    given: object, expected: str
) -> None:
    assert load_settings(vae_tiling=given).vae_tiling == expected
    assert load_settings().vae_tiling == "auto"
