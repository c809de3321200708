"""The shipped migrations build exactly the schema the models describe, on both databases: a
model changed without its migration (or the other way round) fails here, not on an operator's
upgrade."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

import horde_api.studio.models  # noqa: F401  (registers the library's tables on Base)
from horde_api.db.migrate import upgrade
from horde_api.db.models import Base
from tests.conftest import POSTGRES_URL, port_open, require
from tests.helpers.postgres import fresh_schema


def _differences(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))
    finally:
        engine.dispose()


def test_migrations_match_the_models_on_sqlite(tmp_path: Path) -> None:
    assert _differences(f"sqlite:///{tmp_path}/horde.db") == []


def test_migrations_match_the_models_on_postgresql() -> None:
    require(port_open("127.0.0.1", 5432), "PostgreSQL is not running on 127.0.0.1:5432")
    with fresh_schema(POSTGRES_URL, "migrations") as url:
        assert _differences(url) == []
