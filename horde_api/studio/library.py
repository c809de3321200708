"""The library in the database: keeping a request, listing, deleting, quota and retention.

Copying a finished request's images in is `collector.py`'s job; this module never reads Redis.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from horde_api.db.models import utcnow
from horde_api.store.results import ResultStore, ResultStoreUnavailable
from horde_api.studio.models import (
    LibraryImage,
    LibraryRequest,
    LibraryState,
    PendingDeletion,
)
from horde_api.studio.settings import StudioSettings

log = logging.getLogger(__name__)


class LibraryFull(Exception):
    def __init__(self, kept: int, adding: int, limit: int) -> None:
        super().__init__(f"{kept} kept + {adding} > {limit}")
        self.kept = kept
        self.adding = adding
        self.limit = limit


class AlreadyKept(Exception):
    """Another library holds this request (a second claim of the same id)."""


@dataclass(frozen=True)
class Usage:
    images: int
    pending_images: int
    limit: int

    @property
    def room(self) -> int:
        return max(0, self.limit - self.images - self.pending_images)


def max_images(settings: StudioSettings, anonymous: bool) -> int:
    return settings.library_anonymous_max_images if anonymous else settings.library_max_images


def usage(session: Session, owner: str, limit: int) -> Usage:
    images = session.scalar(select(func.count()).where(LibraryImage.owner == owner)) or 0
    pending = (
        session.scalar(
            select(func.coalesce(func.sum(LibraryRequest.n), 0)).where(
                LibraryRequest.owner == owner,
                LibraryRequest.state == LibraryState.PENDING.value,
            )
        )
        or 0
    )
    return Usage(images=int(images), pending_images=int(pending), limit=limit)


def find_request(session: Session, owner: str, request_id: str) -> LibraryRequest | None:
    return session.scalar(
        select(LibraryRequest).where(
            LibraryRequest.owner == owner, LibraryRequest.request_id == request_id
        )
    )


def keep_request(
    session: Session,
    owner: str,
    request_id: str,
    n: int,
    settings: dict[str, Any],
    source: dict[str, Any] | None,
    queued_at: float,
    limit: int,
) -> LibraryRequest:
    """A pending library entry for a request of this owner; the same entry when kept before."""
    existing = find_request(session, owner, request_id)
    if existing is not None:
        return existing
    current = usage(session, owner, limit)
    if n > current.room:
        raise LibraryFull(current.images + current.pending_images, n, limit)
    row = LibraryRequest(
        owner=owner,
        request_id=request_id,
        state=LibraryState.PENDING.value,
        n=n,
        settings=json.dumps(settings),
        source=json.dumps(source) if source else None,
        queued_at=queued_at,
    )
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise AlreadyKept(request_id) from None
    return row


def list_requests(
    session: Session, owner: str, states: list[str] | None, limit: int, offset: int
) -> tuple[list[LibraryRequest], int]:
    """Newest first, and how many there are in all (for paging)."""
    where = [LibraryRequest.owner == owner]
    if states:
        where.append(LibraryRequest.state.in_(states))
    total = session.scalar(select(func.count()).where(*where)) or 0
    rows = session.scalars(
        select(LibraryRequest)
        .where(*where)
        .order_by(LibraryRequest.queued_at.desc(), LibraryRequest.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total)


def pending_rows(
    session: Session, owner: str | None = None, limit: int = 50
) -> list[LibraryRequest]:
    query = select(LibraryRequest).where(LibraryRequest.state == LibraryState.PENDING.value)
    if owner is not None:
        query = query.where(LibraryRequest.owner == owner)
    return list(session.scalars(query.order_by(LibraryRequest.queued_at).limit(limit)))


def pending_rows_of(session: Session, request_ids: list[str]) -> list[LibraryRequest]:
    """The pending entries of these horde requests (any owner)."""
    rows: list[LibraryRequest] = []
    for start in range(0, len(request_ids), 500):
        chunk = request_ids[start : start + 500]
        rows += session.scalars(
            select(LibraryRequest).where(
                LibraryRequest.state == LibraryState.PENDING.value,
                LibraryRequest.request_id.in_(chunk),
            )
        )
    return rows


def find_image(session: Session, owner: str, image_id: str) -> LibraryImage | None:
    image = session.get(LibraryImage, image_id)
    return image if image is not None and image.owner == owner else None


def delete_request(session: Session, store: ResultStore, row: LibraryRequest) -> int:
    """Forget a kept request and delete its image files; returns how many images went."""
    refs = [image.ref for image in row.images]
    if row.source_ref:
        refs.append(row.source_ref)
    count = len(row.images)
    session.delete(row)
    _forget_objects(session, store, refs)
    return count


def delete_image(session: Session, store: ResultStore, image: LibraryImage) -> None:
    """Delete one image; a finished request left without images goes with it."""
    row = image.request
    refs = [image.ref]
    session.delete(image)
    session.flush()
    session.refresh(row)
    if not row.images and row.state != LibraryState.PENDING.value:
        if row.source_ref:
            refs.append(row.source_ref)
        session.delete(row)
    _forget_objects(session, store, refs)


def _forget_objects(session: Session, store: ResultStore, refs: list[str]) -> None:
    """Commit the rows' deletion together with the list of their objects, then delete the
    objects: a store that is down leaves them listed for the sweeper, never orphaned."""
    session.add_all(PendingDeletion(ref=ref) for ref in refs)
    session.commit()
    delete_pending(session, store, refs)


def delete_pending(session: Session, store: ResultStore, refs: list[str] | None = None) -> int:
    """Delete listed objects from the store (`refs`, default: the oldest listed ones); returns
    how many went. Stops quietly at the first store outage: the rest stay listed."""
    if refs is None:
        refs = list(
            session.scalars(
                select(PendingDeletion.ref).order_by(PendingDeletion.queued_at).limit(200)
            )
        )
    deleted: list[str] = []
    try:
        for ref in refs:
            store.delete(ref)
            deleted.append(ref)
    except ResultStoreUnavailable as error:
        log.warning(
            "%d library object(s) stay listed for deletion until the result store is back: %s",
            len(refs) - len(deleted),
            error,
        )
    if deleted:
        session.execute(delete(PendingDeletion).where(PendingDeletion.ref.in_(deleted)))
        session.commit()
    return len(deleted)


def purge_expired(
    session: Session, store: ResultStore, settings: StudioSettings, now: datetime | None = None
) -> int:
    """Delete kept requests older than the operator's retention; returns how many went."""
    now = now or utcnow()
    purged = 0
    for prefix, days in (
        ("user:", settings.library_retention_days),
        ("anon:", settings.library_anonymous_retention_days),
    ):
        if days <= 0:
            continue
        cutoff = now - timedelta(days=days)
        rows = session.scalars(
            select(LibraryRequest)
            .where(LibraryRequest.owner.startswith(prefix), LibraryRequest.created_at < cutoff)
            .limit(200)
        ).all()
        for row in rows:
            delete_request(session, store, row)
            purged += 1
    return purged
