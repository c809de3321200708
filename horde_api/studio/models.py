"""The library's tables: one row per request a user kept, one per image of it.

The images themselves live in the result store under ids of their own (so the horde's retention
of request results never touches them); these rows say whose they are and how they were made.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from sqlalchemy import DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from horde_api.db.models import Base, utcnow


class LibraryState(str, Enum):
    """Where a kept request stands: `pending` until the horde finished it, then copied."""

    PENDING = "pending"
    DONE = "done"
    CANCELLED = "cancelled"
    FAULTED = "faulted"
    EXPIRED = "expired"
    # The horde forgot the request before the library could copy it (e.g. the server was down
    # for longer than the result retention).
    LOST = "lost"


class LibraryRequest(Base):
    __tablename__ = "library_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(80), index=True)
    request_id: Mapped[str] = mapped_column(String(36), unique=True)
    state: Mapped[str] = mapped_column(String(16), default=LibraryState.PENDING.value)
    n: Mapped[int] = mapped_column(Integer)
    # JSON: prompt, params, model, source_processing, as the horde stored them.
    settings: Mapped[str] = mapped_column(Text)
    # JSON: where the source image came from, as the client described it (kind, label, image).
    source: Mapped[str | None] = mapped_column(Text, nullable=True)
    source_ref: Mapped[str | None] = mapped_column(String(80), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Horde times (seconds since the epoch): queued, first image started, last image finished.
    queued_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)

    images: Mapped[list[LibraryImage]] = relationship(
        back_populates="request",
        cascade="all, delete-orphan",
        order_by="LibraryImage.index",
        lazy="selectin",
    )


class LibraryImage(Base):
    __tablename__ = "library_images"
    __table_args__ = (UniqueConstraint("generation_id", name="uq_library_images_generation"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    request_row: Mapped[int] = mapped_column(
        ForeignKey("library_requests.id", ondelete="CASCADE"), index=True
    )
    owner: Mapped[str] = mapped_column(String(80), index=True)
    generation_id: Mapped[str] = mapped_column(String(36))
    index: Mapped[int] = mapped_column(Integer)
    seed: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(255))
    worker_name: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str] = mapped_column(String(80))
    size_bytes: Mapped[int] = mapped_column(Integer)

    request: Mapped[LibraryRequest] = relationship(back_populates="images")


class PendingDeletion(Base):
    """A result-store object whose library row is gone but whose delete has not succeeded yet.

    Written in the same transaction that deletes the row, so a store that is down (a bucket
    outage) never leaves an object nobody knows about: the sweeper retries these later.
    """

    __tablename__ = "library_pending_deletions"

    ref: Mapped[str] = mapped_column(String(80), primary_key=True)
    queued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
