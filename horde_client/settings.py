"""The CLI's defaults: a TOML file, `HORDE_CLI_*` environment variables, then built-in values.

The API key comes from `HORDE_APIKEY` or the file, never from the command line: a command line
is visible to every local user (`ps`) and lands in shell histories.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from horde_client.errors import UsageError
from horde_protocol import ANONYMOUS_API_KEY, MAX_SIDE, MIN_SIDE, SAMPLER_NAMES, SIDE_MULTIPLE

CONFIG_ENV = "HORDE_CLI_CONFIG"


def default_config_file() -> Path:
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "krita-horde" / "cli.toml"


def config_file() -> Path:
    """The config file in effect: $HORDE_CLI_CONFIG, else the per-user default."""
    configured = os.environ.get(CONFIG_ENV)
    return Path(configured).expanduser() if configured else default_config_file()


class ClientSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HORDE_CLI_", extra="forbid", env_ignore_empty=True, validate_default=True
    )

    url: str = Field("https://aihorde.net", description="horde base URL, without /api/v2")
    apikey: SecretStr = Field(
        SecretStr(ANONYMOUS_API_KEY),
        validation_alias=AliasChoices("HORDE_APIKEY", "apikey"),
        description="API key ($HORDE_APIKEY or the config file; the anonymous key otherwise)",
    )
    model: str | None = Field(None, description="model name; none = any model")
    size: int = Field(512, description="the short side of square/landscape/portrait images")
    steps: int = Field(30, ge=1, le=500)
    sampler: str = "k_euler_a"
    cfg_scale: float = Field(7.5, ge=0, le=100)
    batch: int = Field(4, ge=1, le=20, description="images per request when exploring")
    parallel: int = Field(4, ge=1, le=30, description="requests in flight at once")
    check_wait: float = Field(20, gt=0, le=30, description="long-poll seconds asked of the horde")
    check_interval: float = Field(
        2.0, ge=0.1, description="seconds between checks when the horde does not long-poll"
    )
    timeout: float = Field(1800, gt=0, description="cancel a request not done after this")
    explore_dir: Path = Path("explore")
    dream_dir: Path = Path("dream")
    output_dir: Path = Path("horde-output")
    image_format: str = Field("png", pattern="^(png|webp)$")
    color_correct: bool = False
    fps: int = Field(12, ge=1, le=60)

    @field_validator("url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        value = value.rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, got {value!r}")
        return value.removesuffix("/api/v2")

    @field_validator("size")
    @classmethod
    def _side(cls, value: int) -> int:
        if value % SIDE_MULTIPLE or not MIN_SIDE <= value <= MAX_SIDE:
            raise ValueError(f"must be a multiple of {SIDE_MULTIPLE} in {MIN_SIDE}..{MAX_SIDE}")
        return value

    @field_validator("sampler")
    @classmethod
    def _sampler(cls, value: str) -> str:
        if value not in SAMPLER_NAMES:
            raise ValueError(f"unknown sampler {value!r}; allowed: {', '.join(SAMPLER_NAMES)}")
        return value

    @property
    def anonymous(self) -> bool:
        return self.apikey.get_secret_value() == ANONYMOUS_API_KEY

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = config_file()
        if path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def load_settings(**overrides: Any) -> ClientSettings:
    """Settings from the file and environment, with command-line `overrides` on top (None = not
    given). Raises UsageError naming every bad value and where it came from."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return ClientSettings(**given)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']) or 'settings'}: {item['msg']}"
            for item in error.errors()
        )
        raise UsageError(f"bad settings ({problems}); config file: {config_file()}") from None
    except ValueError as error:  # a config file that is not valid TOML
        raise UsageError(f"config file {config_file()}: {error}") from None
