"""The artist's job settings: defaults, validation with plain-word errors, persistence as text.

Krita stores plug-in settings as strings (`readSetting`/`writeSetting`), so every field knows
how to turn itself into text and back; a stored value that no longer parses falls back to the
default instead of breaking the docker.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Protocol

from .geometry import MAX_SIDE, MIN_SIDE, SIDE_MULTIPLE, GeometryError, SizeLimits

NEGATIVE_SEPARATOR = "###"
SAMPLERS: tuple[str, ...] = (
    "k_euler_a",
    "k_euler",
    "k_heun",
    "k_lms",
    "k_dpm_2",
    "k_dpm_2_a",
    "k_dpmpp_2m",
    "k_dpmpp_sde",
    "DDIM",
)
MODES: tuple[str, ...] = ("auto", "txt2img", "img2img", "inpainting")
PUBLIC_HORDE_URL = "https://aihorde.net"
ANONYMOUS_API_KEY = "0000000000"
SETTINGS_GROUP = "krita_horde"


class SettingsError(ValueError):
    """A setting the horde would refuse; the message says what is wrong and what is allowed."""


class SettingsStore(Protocol):
    """Where settings live: Krita's kritarc inside Krita, a dict in tests."""

    def read(self, key: str, default: str) -> str: ...

    def write(self, key: str, value: str) -> None: ...


@dataclass(frozen=True)
class JobSettings:
    prompt: str = ""
    negative: str = ""
    model: str = ""  # empty: any model the horde has
    mode: str = "auto"
    denoise: float = 0.6
    cfg: float = 7.0
    steps: int = 25
    sampler: str = "k_euler_a"
    karras: bool = True
    seed: str = ""  # empty: the horde picks a random seed
    n: int = 1
    min_size: int = 512
    max_size: int = 1024
    clip_skip: int = 1
    nsfw: bool = False
    url: str = PUBLIC_HORDE_URL
    apikey: str = ANONYMOUS_API_KEY
    max_wait: int = 600  # seconds before the plug-in gives up and cancels
    # A PEM file of CA certificates to trust besides the system's (a horde with its own CA);
    # certificates are always verified.
    ca_file: str = ""
    # Every result becomes a layer at once (the old way); otherwise results wait in the
    # history until the artist applies one.
    insert_all: bool = False

    @property
    def limits(self) -> SizeLimits:
        return SizeLimits(self.min_size, self.max_size)

    @property
    def base_url(self) -> str:
        url = self.url.strip().rstrip("/")
        # Accept a URL pasted with the API path; the contract is scheme://host:port.
        if url.endswith("/api/v2"):
            url = url[: -len("/api/v2")]
        return url

    def validate(self) -> None:
        """Raise SettingsError naming the first bad field and the allowed values."""
        if not self.prompt.strip():
            raise SettingsError("write a prompt first")
        if NEGATIVE_SEPARATOR in self.prompt:
            raise SettingsError(
                f"the prompt must not contain {NEGATIVE_SEPARATOR!r}: put the negative prompt"
                " in its own field"
            )
        if len(self.prompt) + len(self.negative) > 9000:
            raise SettingsError("prompt and negative prompt together must stay under 9000 chars")
        if self.mode not in MODES:
            raise SettingsError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.sampler not in SAMPLERS:
            raise SettingsError(
                f"sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}"
            )
        _check_range("steps", self.steps, 1, 500)
        _check_range("number of images", self.n, 1, 20)
        _check_range("cfg scale", self.cfg, 0, 100)
        _check_range("denoising strength", self.denoise, 0.01, 1.0)
        _check_range("clip skip", self.clip_skip, 1, 12)
        _check_range("max wait (seconds)", self.max_wait, 10, 24 * 3600)
        if len(self.seed) > 256:
            raise SettingsError("the seed must be at most 256 characters")
        try:
            self.limits.validate()
        except GeometryError as error:
            raise SettingsError(str(error)) from None
        if not self.base_url.startswith(("http://", "https://")):
            raise SettingsError(
                f"the horde URL must start with http:// or https://, got {self.url!r}"
                f" (for the public horde use {PUBLIC_HORDE_URL})"
            )
        if not self.apikey.strip():
            raise SettingsError(
                f"the API key is empty: use your horde key or the anonymous key {ANONYMOUS_API_KEY}"
            )

    def with_values(self, **values: Any) -> JobSettings:
        return replace(self, **values)


def _check_range(label: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise SettingsError(f"{label} must be between {low} and {high}, got {value}")


def field_names() -> tuple[str, ...]:
    return tuple(field.name for field in fields(JobSettings))


def to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def from_text(text: str, default: Any) -> Any:
    """Parse stored text into the type of `default`; ValueError when it does not fit."""
    if isinstance(default, bool):
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ValueError(f"not a boolean: {text!r}")
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float):
        return float(text)
    return text


def load_settings(store: SettingsStore) -> JobSettings:
    """Settings saved in `store`; fields missing or unreadable keep their defaults."""
    defaults = JobSettings()
    values: dict[str, Any] = {}
    for name in field_names():
        default = getattr(defaults, name)
        text = store.read(name, to_text(default))
        try:
            values[name] = from_text(text, default)
        except ValueError:
            values[name] = default
    return JobSettings(**values)


def save_settings(store: SettingsStore, settings: JobSettings) -> None:
    for name in field_names():
        store.write(name, to_text(getattr(settings, name)))


class MemorySettingsStore:
    """A SettingsStore in a dict (tests, and the docker outside Krita)."""

    def __init__(self, values: dict[str, str] | None = None) -> None:
        self.values: dict[str, str] = dict(values or {})

    def read(self, key: str, default: str) -> str:
        return self.values.get(key, default)

    def write(self, key: str, value: str) -> None:
        self.values[key] = value


__all__ = [
    "MAX_SIDE",
    "MIN_SIDE",
    "SIDE_MULTIPLE",
    "JobSettings",
    "MemorySettingsStore",
    "SettingsError",
    "SettingsStore",
    "load_settings",
    "save_settings",
]
