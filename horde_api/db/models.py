"""SQLAlchemy tables: users, their API keys (hashes only), their workers, prompt filters and
the kudos ledger.

Kudos are stored in hundredths (integers): sums are exact in every database."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    trusted: Mapped[bool] = mapped_column(Boolean, default=False)
    concurrency: Mapped[int] = mapped_column(Integer, default=30)
    moderator: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The balance, and its parts as the public horde's `kudos_details` names them.
    kudos_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    accumulated_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    gifted_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    received_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    admin_cents: Mapped[int] = mapped_column(BigInteger, default=0)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    salt: Mapped[str] = mapped_column(String(64))
    secret_hash: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Worker(Base):
    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    maintenance: Mapped[bool] = mapped_column(Boolean, default=False)
    maintenance_msg: Mapped[str | None] = mapped_column(Text, nullable=True)
    info: Mapped[str | None] = mapped_column(Text, nullable=True)
    # What its owner earned through it: per image, and for being online.
    generated_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    uptime_cents: Mapped[int] = mapped_column(BigInteger, default=0)


class PromptFilter(Base):
    """A moderator's regex over prompts (the public horde's filter, docs/protocol.md)."""

    __tablename__ = "prompt_filters"
    __table_args__ = (UniqueConstraint("regex", "filter_type"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # a UUID, as on the public horde
    regex: Mapped[str] = mapped_column(Text)
    filter_type: Mapped[int] = mapped_column(Integer, index=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    replacement: Mapped[str] = mapped_column(Text, default="")
    # The moderator who added or last changed it.
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class KudosEntry(Base):
    """One movement of kudos: a charge, a reward, a transfer's half, an operator's adjustment.
    `event_id` names the event it settles, so settling the same event twice changes nothing."""

    __tablename__ = "kudos_ledger"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(120), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    cents: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(20))
    worker_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
