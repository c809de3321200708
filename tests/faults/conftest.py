"""Fixtures of the fault layer: the real horde API (embedded, or on the real Redis + PostgreSQL)
started by the API engineer's `tests/helpers/live_horde.py`, with short timings for tests."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

# The janitor requeues expired leases and unsent ones; it must look often for the ttl and
# pickup tests to stay short. Deadlines of the fault tests derive from these figures.
JANITOR_SECONDS = 0.2
PICKUP_SECONDS = 2.0
FAST_ENV: dict[str, str] = {
    "HORDE_JANITOR_INTERVAL_SECONDS": str(JANITOR_SECONDS),
    "HORDE_POP_PICKUP_SECONDS": str(PICKUP_SECONDS),
}
# What an API process needs to start again (migrations, first heartbeat), on a loaded machine.
RESTART_SLACK_SECONDS = 30.0


def pickup_deadline(images: int = 1, seconds_per_image: float = 10.0) -> float:
    """Seconds within which an image whose pop reply died must be done again: the pickup
    window, a janitor pass, a restart, and the generation itself."""
    return PICKUP_SECONDS + 2 * JANITOR_SECONDS + RESTART_SLACK_SECONDS + images * seconds_per_image


def horde(
    tmp_path: Path,
    *,
    extra_env: Mapping[str, str] | None = None,
    **storage: Any,
) -> AbstractContextManager[Any]:
    """`start_horde` with the fast timings plus `extra_env` (imported late: the helper belongs to
    the API engineer and a missing one should fail these tests, not their collection)."""
    from tests.helpers.live_horde import start_horde

    return start_horde(tmp_path, extra_env={**FAST_ENV, **(extra_env or {})}, **storage)


def shared_storage(redis_url: str, redis_prefix: str, postgres_schema_url: str) -> dict[str, str]:
    """The keyword arguments of `start_horde` for the multi-process mode (Redis + PostgreSQL)."""
    return {
        "redis_url": redis_url,
        "redis_prefix": redis_prefix,
        "database_url": postgres_schema_url,
    }


@pytest.fixture
def embedded_horde(tmp_path: Path) -> Iterator[Any]:
    """The default single-process mode: in-process Redis and a SQLite file."""
    with horde(tmp_path) as live:
        yield live


@pytest.fixture
def shared_horde(
    tmp_path: Path, redis_url: str, redis_prefix: str, postgres_schema_url: str
) -> Iterator[Any]:
    with horde(tmp_path, **shared_storage(redis_url, redis_prefix, postgres_schema_url)) as live:
        yield live


STORAGE_MODES = [
    pytest.param("embedded", id="embedded"),
    pytest.param("shared", id="redis+postgres", marks=[pytest.mark.redis, pytest.mark.postgres]),
]


def storage_for(request: pytest.FixtureRequest, mode: str) -> dict[str, str]:
    """`start_horde` storage arguments for `mode`; the shared mode pulls the real-service
    fixtures only when asked, so the embedded runs need neither Redis nor PostgreSQL."""
    if mode == "embedded":
        return {}
    return shared_storage(
        request.getfixturevalue("redis_url"),
        request.getfixturevalue("redis_prefix"),
        request.getfixturevalue("postgres_schema_url"),
    )
