"""Library objects still to delete from the result store (a bucket that was down).

Revision ID: 0006_library_pending_deletions
Revises: 0005_kudos
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_library_pending_deletions"
down_revision = "0005_kudos"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "library_pending_deletions",
        sa.Column("ref", sa.String(80), primary_key=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_library_pending_deletions_queued_at", "library_pending_deletions", ["queued_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_library_pending_deletions_queued_at", "library_pending_deletions")
    op.drop_table("library_pending_deletions")
