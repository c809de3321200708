"""The one settings class of the horde API: `HORDE_*` environment variables and an optional file.

The file named by `HORDE_CONFIG_FILE` (a `.env`-style `KEY=value` file using the same `HORDE_*`
names) is read first; real environment variables win over it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
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

    # Results in S3-compatible object storage (docs/operator.md); empty bucket = the filesystem.
    results_s3_bucket: str = Field("", description="bucket for result images; empty = data_dir")
    results_s3_endpoint_url: str = Field(
        "", description="S3 API endpoint (R2, MinIO); empty = AWS S3 of results_s3_region"
    )
    results_s3_region: str = Field("", description="region (R2: auto); empty = the AWS chain's")
    results_s3_access_key_id: SecretStr | None = Field(
        None, description="with the secret below; unset = the standard AWS credential chain"
    )
    results_s3_secret_access_key: SecretStr | None = None
    results_s3_prefix: str = Field("", description="key prefix of every object, e.g. horde/")
    results_s3_addressing_style: Literal["auto", "path", "virtual"] = "auto"
    results_s3_ca_bundle: Path | None = Field(
        None, description="PEM CA bundle trusted for the endpoint (a private MinIO)"
    )
    results_s3_url_seconds: int = Field(
        3600, ge=60, le=7 * 24 * 3600, description="lifetime of presigned result (GET) links"
    )
    results_s3_max_attempts: int = Field(
        3, ge=1, le=10, description="tries per bucket call before a 503"
    )
    upload_sweep_seconds: float | None = Field(
        None,
        ge=0,
        description="how often abandoned uploads are looked for; unset = every janitor pass on"
        " the filesystem, 60 s with S3 (each look is a billed LIST)",
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
    pop_long_poll_max_seconds: float = Field(
        30,
        ge=0,
        le=300,
        description="longest a pop may be held waiting for a job (a worker's long_poll_seconds,"
        " our extension); 0 = never hold one",
    )
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

    @field_validator("results_s3_access_key_id", "results_s3_secret_access_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `HORDE_RESULTS_S3_SECRET_ACCESS_KEY=` in a config file means "not given".
        return None if value == "" else value

    @model_validator(mode="after")
    def _s3_keys_in_pairs(self) -> HordeSettings:
        # One of the pair alone is a typo or a lost variable, never a usable configuration.
        key_id, secret = self.results_s3_access_key_id, self.results_s3_secret_access_key
        if (key_id is None) != (secret is None):
            missing = "ACCESS_KEY_ID" if key_id is None else "SECRET_ACCESS_KEY"
            raise ValueError(
                f"HORDE_RESULTS_S3_{missing} is not set but its pair is: set both, or neither"
                " to use the standard AWS credential chain"
            )
        return self

    def resolved_upload_sweep_seconds(self) -> float:
        if self.upload_sweep_seconds is not None:
            return self.upload_sweep_seconds
        return 60.0 if self.results_s3_bucket else 0.0

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
