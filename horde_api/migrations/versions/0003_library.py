"""The web studio's library: requests a user kept and their images.

Revision ID: 0003_library
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_library"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "library_requests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("owner", sa.String(80), nullable=False),
        sa.Column("request_id", sa.String(36), nullable=False, unique=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=True),
        sa.Column("source_ref", sa.String(80), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queued_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("finished_at", sa.Float, nullable=True),
    )
    op.create_index("ix_library_requests_owner", "library_requests", ["owner"])
    op.create_table(
        "library_images",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "request_row",
            sa.Integer,
            sa.ForeignKey("library_requests.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("owner", sa.String(80), nullable=False),
        sa.Column("generation_id", sa.String(36), nullable=False),
        sa.Column("index", sa.Integer, nullable=False),
        sa.Column("seed", sa.String(64), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("worker_name", sa.String(100), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(80), nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.UniqueConstraint("generation_id", name="uq_library_images_generation"),
    )
    op.create_index("ix_library_images_request_row", "library_images", ["request_row"])
    op.create_index("ix_library_images_owner", "library_images", ["owner"])


def downgrade() -> None:
    op.drop_table("library_images")
    op.drop_table("library_requests")
