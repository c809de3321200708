"""The one settings class of the horde API: `HORDE_*` environment variables and an optional file.

The file named by `HORDE_CONFIG_FILE` (a `.env`-style `KEY=value` file using the same `HORDE_*`
names) is read first; real environment variables win over it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class HordeSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HORDE_",
        env_file=os.environ.get("HORDE_CONFIG_FILE") or None,
        extra="ignore",
    )

    data_dir: Path = Path("horde-data")
    database_url: str = Field("", description="SQLAlchemy URL; empty = SQLite in data_dir")
    redis_url: str = Field("", description="empty = embedded in-process fakeredis")
    redis_prefix: str = "horde:"
    public_url: str = Field("", description="base URL clients reach us at; empty = from request")
    processes: int = Field(
        0, ge=0, le=64, description="API processes of `serve`; 0 = 1 embedded, else CPU count"
    )
    tls_cert_file: Path | None = Field(
        None, description="PEM certificate (chain): `serve` speaks HTTPS itself"
    )
    tls_key_file: Path | None = Field(None, description="PEM private key of tls_cert_file")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="addresses/networks of reverse proxies whose X-Forwarded-For/-Proto are"
        " believed (comma-separated); empty = none",
    )

    # Queue behaviour.
    request_expiry_seconds: float = 20 * 60
    result_retention_seconds: float = 2 * 60 * 60
    lease_ttl_min_seconds: int = 150
    lease_ttl_override_seconds: float = Field(0, description=">0 replaces the ttl formula")
    pop_pickup_seconds: float = Field(
        10, gt=0, description="a lease whose pop reply never left is requeued after this"
    )
    max_faults_per_request: int = Field(
        2, ge=0, description="restarts (expired leases, faulted submits) a request survives"
    )
    in_flight_repair_seconds: float = Field(
        60, gt=0, description="how often the in-flight counts are recomputed from the requests"
    )
    pop_lookahead: int = Field(8, ge=1, le=100)
    janitor_interval_seconds: float = 1.0
    worker_offline_seconds: float = 300
    embedded_snapshot_seconds: float = 2.0

    # Users and limits.
    default_concurrency: int = 30
    anonymous_concurrency: int = 10
    rate_limit_per_key_per_minute: int = 6000
    rate_limit_per_ip_per_minute: int = 12000
    rate_limit_window_seconds: int = Field(
        60, ge=1, description="length of the fixed window the two rate limits above count in"
    )
    key_cache_seconds: float = 1.0
    filter_refresh_seconds: float = Field(
        10, gt=0, description="how often each API process reloads the prompt filters"
    )

    # Input limits.
    max_body_bytes: int = 32 * 1024 * 1024
    max_source_pixels: int = 3072 * 3072
    max_source_bytes: int = 16 * 1024 * 1024
    max_preview_bytes: int = 512 * 1024
    max_result_bytes: int = 16 * 1024 * 1024

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'horde.sqlite3').resolve()}"

    def serve_processes(self) -> int:
        if self.processes:
            return self.processes
        return 1 if self.embedded else max(1, min(os.cpu_count() or 1, 8))

    @property
    def embedded(self) -> bool:
        """True when Redis lives inside this process (single-process mode)."""
        return not self.redis_url
