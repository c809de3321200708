"""The worker's settings: a TOML/YAML file, `HORDE_WORKER_*` env vars and CLI flags.

Precedence, highest first: CLI flags, environment, config file, defaults. Every field carries a
description: the command line (pydantic-settings' CLI, horde_worker/cli.py) and its help are
made from them, so neither can miss an option.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from horde_protocol import ANONYMOUS_API_KEY, MAX_SIDE, MIN_SIDE, UPSCALERS, ControlType
from horde_worker.model_reference import PUBLIC_REFERENCE_URL
from horde_worker.prediction import Prediction
from horde_worker.tiny_model import TINY_SOURCE, default_cache_dir

ENV_PREFIX = "HORDE_WORKER_"
CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt")
# The source of a model fetched by its name in the public horde's model reference.
REFERENCE_SOURCE = "reference"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")

# The config file being loaded, seen by the settings source below (settings classes are built by
# pydantic, so the path cannot travel as a constructor argument).
_config_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "horde_worker_config_file", default=None
)


class ConfigError(ValueError):
    """The configuration is invalid; the message lists every problem and what is allowed."""


LOCAL_HORDE_URL = "http://127.0.0.1:7420"
PUBLIC_HORDE_URL = "https://aihorde.net"


def default_name() -> str:
    return f"krita-horde-{socket.gethostname()}"[:100]


def default_config_path() -> Path:
    """The config file `init` writes, and `run`/`check` read when it exists and no --config
    (or HORDE_WORKER_CONFIG) names another: $XDG_CONFIG_HOME/horde-worker/config.toml."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "horde-worker" / "config.toml"


def normalise_base_url(value: str) -> str:
    """The horde's base URL without a trailing slash or /api/v2; ValueError when it is not an
    http(s) URL."""
    value = value.strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError(
            f"must be an http:// or https:// URL such as http://host:7420, got {value!r}"
        )
    # People paste the API root; the contract is the base URL without it.
    return value.removesuffix("/api/v2").rstrip("/")


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        validate_default=True,
        # Empty env vars mean "not set", not "set to the empty string".
        env_ignore_empty=True,
    )

    # --- the horde ---
    horde_url: str = Field(
        LOCAL_HORDE_URL,
        description="base URL of the horde (scheme://host:port, without /api/v2)",
    )
    api_key: SecretStr | None = Field(
        None,
        description="API key of the user who owns this worker (never logged); required by `run`",
    )
    name: str = Field(
        default_factory=default_name,
        min_length=1,
        max_length=100,
        description="worker name shown by the horde (first use registers it to the key's owner)",
    )
    # --- what it serves ---
    models: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "models to serve, NAME=SOURCE; SOURCE is `tiny` (built-in random-weight test model),"
            " `reference` (NAME's files in the model reference, fetched once; a bare --model"
            " NAME means it), a diffusers folder, a .safetensors/.ckpt file or a hub id"
            " owner/name (fetched once unless offline)"
        ),
    )
    offline: bool = Field(
        False,
        description=(
            "never download: a model (or the model reference) that is not on this machine is an"
            " error naming what is missing"
        ),
    )
    model_reference_url: str = Field(
        PUBLIC_REFERENCE_URL,
        description=(
            "the image model reference (JSON) naming the models, their files and sha256: an"
            " http(s) URL or a local file"
        ),
    )
    models_dir: Path | None = Field(
        None,
        description="where models fetched from the reference are kept; default CACHE_DIR/models",
    )
    predictions: dict[str, Prediction] = Field(
        default_factory=dict,
        description=(
            "what a single-file model predicts, NAME=epsilon or NAME=v_prediction; overrides"
            " the file's markers, the model reference and the family default (SD 2.x: v)"
        ),
    )
    # --- features beyond the model (docs/worker.md, "Adding model files") ---
    post_processors: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "upscalers to serve, HORDE_NAME=FILE: one of " + ", ".join(UPSCALERS) + ", each an"
            " ESRGAN-family .pth/.safetensors file"
        ),
    )
    controlnets: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "ControlNets to serve, TYPE=SOURCE: TYPE is a horde control type (canny, depth, ...),"
            " SOURCE a diffusers ControlNet folder or a .safetensors file"
        ),
    )
    lora_folder: Path | None = Field(
        None, description="folder of LoRA files, served by file name (and horde-names.json)"
    )
    textual_inversion_folder: Path | None = Field(
        None, description="folder of textual inversion files, served by file name"
    )
    safety_checker: Path | None = Field(
        None,
        description=(
            "folder of the NSFW safety checker (diffusers' StableDiffusionSafetyChecker and its"
            " CLIP feature extractor) run on the images of jobs that ask for censorship; default:"
            " the safety_checker/feature_extractor folders of a model folder that ships them"
        ),
    )
    upscale_tile: int = Field(
        256, ge=32, le=4096, description="side of the tiles post-processors work on (pixels)"
    )
    max_pixels: int = Field(
        512 * 512,
        ge=MIN_SIDE * MIN_SIDE,
        le=MAX_SIDE * MAX_SIDE,
        description=(
            "largest width*height this worker accepts; unset = estimated from the free memory"
            ' after loading (docs/worker.md, "Memory and image size")'
        ),
    )
    allow_img2img: bool = Field(True, description="accept img2img jobs")
    allow_painting: bool = Field(True, description="accept inpainting/outpainting jobs")
    nsfw: bool = Field(False, description="accept requests marked NSFW")
    # NoDecode: the env var is a comma-separated list (or JSON), split by the validator below.
    blacklist: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="words; requests whose prompt has one are not served"
    )
    threads: int = Field(1, ge=1, le=10, description="jobs generated at the same time")
    # --- the device ---
    device: str = Field("auto", description="auto (cuda, then mps, then cpu), cpu, mps, cuda[:N]")
    dtype: Literal["auto", "fp16", "bf16", "fp32"] = Field(
        "auto", description="weights dtype; auto = fp16 on CUDA, fp32 elsewhere"
    )
    attention: Literal["sdpa", "slicing"] = Field(
        "sdpa",
        description="sdpa = PyTorch scaled-dot-product attention (fast); slicing saves VRAM",
    )
    torch_compile: bool = Field(
        False, description="CUDA: torch.compile the UNet (slow first job per size, then faster)"
    )
    channels_last: bool = Field(False, description="CUDA: channels_last memory format for the UNet")
    vae_tiling: Literal["auto", "on", "off"] = Field(
        "auto",
        description=(
            "decode large images in tiles (less memory); auto = on when max_pixels would not"
            ' decode untiled in the free memory (docs/worker.md, "Memory and image size")'
        ),
    )
    webp_quality: int = Field(95, ge=1, le=100, description="WebP quality of results")
    cache_dir: Path = Field(
        default_factory=default_cache_dir,
        description="where the tiny model is built and the model reference is kept",
    )
    # --- timings (seconds) ---
    connect_timeout: float = Field(10.0, gt=0, description="HTTP connect timeout")
    read_timeout: float = Field(60.0, gt=0, description="HTTP read timeout")
    retry_initial_delay: float = Field(
        1.0, gt=0, description="first wait after a network fault or 5xx; doubles up to the max"
    )
    retry_max_delay: float = Field(60.0, gt=0, description="longest wait between retries")
    idle_initial_delay: float = Field(
        0.5, gt=0, description="first wait after a pop that brought no job"
    )
    idle_max_delay: float = Field(4.0, gt=0, description="longest wait between empty pops")
    pop_long_poll_seconds: float = Field(
        20.0,
        ge=0,
        le=300,
        description=(
            "how long a pop may wait on the horde for a job (our horde's long-poll; 0 = never"
            " ask; a horde without it is polled with the idle back-off)"
        ),
    )
    pop_ahead: bool = Field(
        True, description="pop the next job while the current one generates (pipelining)"
    )
    progress_interval: float = Field(
        0.5, ge=0.05, description="shortest time between two progress reports of a job"
    )
    preview_every: int = Field(
        5, ge=0, description="send a small preview every N steps (0 = never)"
    )
    skipped_log_interval: float = Field(
        60.0, gt=0, description="how often to log why waiting requests were skipped"
    )
    summary_interval: float = Field(300.0, gt=0, description="how often to log a summary")
    shutdown_submit_timeout: float = Field(
        30.0,
        gt=0,
        description="after a second signal, how long to keep retrying the last submit",
    )
    ttl_margin: float = Field(
        10.0,
        ge=0,
        description=(
            "seconds of a job's ttl kept for decoding, encoding and the submit (at most a"
            " quarter of the ttl): a generation whose steps would end later is stopped and"
            " answered faulted"
        ),
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="log level")

    @field_validator("horde_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return normalise_base_url(value)

    @field_validator("api_key")
    @classmethod
    def _not_anonymous(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value() in ("", ANONYMOUS_API_KEY):
            raise ValueError(
                "the anonymous key cannot run a worker: use the key of a registered user"
            )
        return value

    @field_validator("models")
    @classmethod
    def _model_sources(cls, value: dict[str, str]) -> dict[str, str]:
        problems = []
        for name, source in value.items():
            if not name.strip():
                problems.append("a model name is empty")
                continue
            problem = source_problem(source)
            if problem:
                problems.append(f"{name}={source}: {problem}")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @model_validator(mode="after")
    def _predictions_name_models(self) -> WorkerSettings:
        unknown = sorted(set(self.predictions) - set(self.models))
        if unknown:
            raise ValueError(
                f"predictions: {', '.join(unknown)} not among the configured models"
                f" ({', '.join(self.models) or 'none'}); give --model NAME=SOURCE for each"
            )
        return self

    @field_validator("post_processors")
    @classmethod
    def _post_processor_files(cls, value: dict[str, str]) -> dict[str, str]:
        problems = []
        for name, source in value.items():
            if name not in UPSCALERS:
                problems.append(
                    f"{name}: not an upscaler this worker serves; allowed: {', '.join(UPSCALERS)}"
                    " (face fixers and strip_background are not supported)"
                )
            elif not Path(source).expanduser().is_file():
                problems.append(f"{name}={source}: no such file")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("controlnets")
    @classmethod
    def _controlnet_sources(cls, value: dict[str, str]) -> dict[str, str]:
        known = [member.value for member in ControlType]
        problems = []
        for control_type, source in value.items():
            if control_type not in known:
                problems.append(
                    f"{control_type}: unknown control type; allowed: {', '.join(known)}"
                )
            elif not Path(source).expanduser().exists():
                problems.append(f"{control_type}={source}: no such folder or file")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("lora_folder", "textual_inversion_folder")
    @classmethod
    def _existing_folder(cls, value: Path | None) -> Path | None:
        if value is not None and not value.expanduser().is_dir():
            raise ValueError(f"{value}: no such folder")
        return value

    @field_validator("safety_checker")
    @classmethod
    def _checker_folder(cls, value: Path | None) -> Path | None:
        if value is not None:
            from horde_worker.safety import find_checker

            find_checker(value, {})  # raises a ValueError naming what the folder lacks
        return value

    @field_validator("device")
    @classmethod
    def _device_name(cls, value: str) -> str:
        if not _DEVICE.match(value):
            raise ValueError(f"must be auto, cpu, mps, cuda or cuda:N, got {value!r}")
        return value

    @field_validator("vae_tiling", mode="before")
    @classmethod
    def _tiling_switch(cls, value: Any) -> Any:
        # Older configs said true/false.
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return "on" if value.lower() == "true" else "off"
        return value

    @property
    def max_pixels_set(self) -> bool:
        """Whether the volunteer chose max_pixels (flag, env, file); else it is estimated."""
        return "max_pixels" in self.model_fields_set

    @field_validator("blacklist", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().startswith("["):
            return json.loads(value)
        if isinstance(value, str):
            return [word.strip() for word in value.split(",") if word.strip()]
        return value

    @model_validator(mode="after")
    def _ordered_delays(self) -> WorkerSettings:
        if self.retry_initial_delay > self.retry_max_delay:
            raise ValueError("retry_initial_delay must not exceed retry_max_delay")
        if self.idle_initial_delay > self.idle_max_delay:
            raise ValueError("idle_initial_delay must not exceed idle_max_delay")
        return self

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
        path = _config_file.get()
        if path is not None:
            sources.append(_file_source(settings_cls, path))
        return tuple(sources)

    def require_api_key(self) -> str:
        if self.api_key is None:
            raise ConfigError(
                f"api_key: missing; give --api-key, {ENV_PREFIX}API_KEY or api_key in the config"
                " file (the key of a registered user)"
            )
        return self.api_key.get_secret_value()

    @property
    def resolved_models_dir(self) -> Path:
        return (self.models_dir or self.cache_dir / "models").expanduser()

    def require_models(self) -> dict[str, str]:
        if not self.models:
            raise ConfigError(
                "models: none configured; give --model NAME=SOURCE (e.g. --model"
                f" krita-horde-tiny=tiny), {ENV_PREFIX}MODELS as JSON, or a [models] table"
            )
        return self.models


def is_hub_id(source: str) -> bool:
    """`owner/name` that is not a path on this machine."""
    path = Path(source).expanduser()
    looks_like_path = (
        source.startswith((".", "/", "~")) or path.suffix.lower() in CHECKPOINT_SUFFIXES
    )
    return not path.exists() and not looks_like_path and bool(_HUB_ID.match(source))


def source_problem(source: str) -> str | None:
    """Why `source` cannot be a model source, or None when it can."""
    if source in (TINY_SOURCE, REFERENCE_SOURCE):
        return None
    path = Path(source).expanduser()
    if path.is_dir():
        if (path / "model_index.json").is_file():
            return None
        return "folder has no model_index.json (not a diffusers pipeline folder)"
    if path.is_file():
        if path.suffix.lower() in CHECKPOINT_SUFFIXES:
            return None
        return f"file is not a checkpoint; allowed suffixes: {', '.join(CHECKPOINT_SUFFIXES)}"
    if is_hub_id(source):
        return None
    return (
        "no such folder or file; a source is `tiny`, `reference`, a diffusers folder, a"
        " .safetensors/.ckpt file, or a hub id like owner/name"
    )


def _file_source(settings_cls: type[BaseSettings], path: Path) -> PydanticBaseSettingsSource:
    from pydantic_settings import TomlConfigSettingsSource, YamlConfigSettingsSource

    suffix = path.suffix.lower()
    if suffix == ".toml":
        return TomlConfigSettingsSource(settings_cls, toml_file=path)
    if suffix in (".yaml", ".yml"):
        return YamlConfigSettingsSource(settings_cls, yaml_file=path)
    raise ConfigError(f"config file {path}: unknown format; use a .toml, .yaml or .yml file")


def format_errors(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "config"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown option (see horde-worker --help for the allowed ones)"
        lines.append(f"  {where}: {message}")
    return "invalid worker configuration:\n" + "\n".join(lines)


@contextlib.contextmanager
def reading_config_file(config_file: Path | None) -> Iterator[None]:
    """Within it, WorkerSettings (and its subclasses) read `config_file` below the environment.
    Raises ConfigError when the file is missing or not a TOML/YAML file."""
    if config_file is not None:
        config_file = Path(config_file).expanduser()
        if not config_file.is_file():
            raise ConfigError(f"config file {config_file}: no such file")
        try:
            _file_source(WorkerSettings, config_file)  # an unknown format or bad syntax: early
        except ConfigError:
            raise
        except ValueError as error:
            raise ConfigError(f"invalid worker configuration: {error}") from None
    token = _config_file.set(config_file)
    try:
        yield
    finally:
        _config_file.reset(token)


def load_settings(config_file: Path | None = None, **overrides: Any) -> WorkerSettings:
    """Settings from `config_file` (if any), the environment and `overrides` (CLI flags).

    Raises ConfigError with one line per problem.
    """
    with reading_config_file(config_file):
        try:
            return WorkerSettings(**{k: v for k, v in overrides.items() if v is not None})
        except ValidationError as error:
            raise ConfigError(format_errors(error)) from None
        except ValueError as error:
            # Malformed JSON in an env var.
            raise ConfigError(f"invalid worker configuration: {error}") from None
