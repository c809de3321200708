"""Moderators, and the prompt filters they manage (the public horde's /v2/filters).

Revision ID: 0004_moderators_filters
Revises: 0003_library
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_moderators_filters"
down_revision = "0003_library"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("moderator", sa.Boolean, nullable=False, server_default=sa.false())
        )
    op.create_table(
        "prompt_filters",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("regex", sa.Text, nullable=False),
        sa.Column("filter_type", sa.Integer, nullable=False, index=True),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("replacement", sa.Text, nullable=False, server_default=""),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("regex", "filter_type"),
    )


def downgrade() -> None:
    op.drop_table("prompt_filters")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("moderator")
