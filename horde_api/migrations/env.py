"""Alembic environment: runs on the connection handed in by horde_api.db.migrate."""

from __future__ import annotations

from alembic import context

from horde_api.db.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()
