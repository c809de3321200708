"""The studio's and the library's settings, read like the horde's (`HORDE_*` variables and the file
named by `HORDE_CONFIG_FILE`).

A class of its own beside `HordeSettings` so that the studio stays one package that the horde
includes, and its knobs are listed in one place (docs/web.md, "For operators").
"""

from __future__ import annotations

import os

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class StudioSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HORDE_",
        env_file=os.environ.get("HORDE_CONFIG_FILE") or None,
        extra="ignore",
    )

    studio_enabled: bool = Field(True, description="serve the web studio at /")
    library_max_images: int = Field(
        1000, ge=0, description="images one registered user's library may hold (0 = none)"
    )
    library_anonymous_max_images: int = Field(
        100, ge=0, description="images one anonymous browser's library may hold (0 = none)"
    )
    library_retention_days: float = Field(
        0, ge=0, description="delete library requests older than this many days (0 = keep)"
    )
    library_anonymous_retention_days: float = Field(
        30, ge=0, description="the same for anonymous libraries (0 = keep)"
    )
    library_sweep_seconds: float = Field(
        2.0, gt=0, description="how often finished requests are copied into libraries"
    )
    source_fetch_timeout_seconds: float = Field(
        10.0, gt=0, le=120, description="the advanced page's URL source: time limit of a fetch"
    )
    source_fetch_max_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="the advanced page's URL source: size limit"
    )
