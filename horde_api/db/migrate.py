"""Applying the Alembic migrations shipped inside the package."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# Any constant works; it only has to be the same in every process of one deployment.
_PG_MIGRATION_LOCK = 7420_0001


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision. Several API processes starting together on
    PostgreSQL take turns through an advisory lock."""
    config = alembic_config(engine)
    # Alembic announces every plug-in at INFO; only problems are worth a line in our log.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            try:
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
                conn.commit()
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
                conn.commit()
    else:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
