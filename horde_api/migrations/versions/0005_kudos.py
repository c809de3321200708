"""Kudos: balances and their parts on users and workers, and the ledger of every movement.

Revision ID: 0005_kudos
Revises: 0004_moderators_filters
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_kudos"
down_revision = "0004_moderators_filters"
branch_labels = None
depends_on = None

USER_COLUMNS = ("kudos_cents", "accumulated_cents", "gifted_cents", "received_cents", "admin_cents")
WORKER_COLUMNS = ("generated_cents", "uptime_cents")


def _cents(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger, nullable=False, server_default="0")


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        for name in USER_COLUMNS:
            batch.add_column(_cents(name))
    with op.batch_alter_table("workers") as batch:
        for name in WORKER_COLUMNS:
            batch.add_column(_cents(name))
    op.create_table(
        "kudos_ledger",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("event_id", sa.String(120), nullable=False, unique=True),
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("cents", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("worker_id", sa.String(36), nullable=True),
        sa.Column("request_id", sa.String(36), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("kudos_ledger")
    with op.batch_alter_table("workers") as batch:
        for name in WORKER_COLUMNS:
            batch.drop_column(name)
    with op.batch_alter_table("users") as batch:
        for name in USER_COLUMNS:
            batch.drop_column(name)
