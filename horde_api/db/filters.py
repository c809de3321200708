"""Prompt filters in the database: the queries behind /v2/filters."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from horde_api.db.models import PromptFilter, User


class FilterExists(Exception):
    """A filter with the same regex and type is there already."""


@dataclass(frozen=True)
class FilterRow:
    id: str
    regex: str
    filter_type: int
    description: str | None
    replacement: str
    username: str


def _row(session: Session, found: PromptFilter) -> FilterRow:
    user = session.get(User, found.user_id) if found.user_id is not None else None
    return FilterRow(
        id=found.id,
        regex=found.regex,
        filter_type=found.filter_type,
        description=found.description,
        replacement=found.replacement,
        username=f"{user.username}#{user.id}" if user is not None else "",
    )


def list_filters(
    session: Session, filter_type: int | None = None, contains: str | None = None
) -> list[FilterRow]:
    query = select(PromptFilter).order_by(PromptFilter.filter_type, PromptFilter.created_at)
    if filter_type is not None:
        query = query.where(PromptFilter.filter_type == filter_type)
    if contains:
        query = query.where(PromptFilter.regex.contains(contains, autoescape=True))
    return [_row(session, found) for found in session.scalars(query)]


def get_filter(session: Session, filter_id: str) -> FilterRow | None:
    found = session.get(PromptFilter, filter_id)
    return _row(session, found) if found is not None else None


def add_filter(
    session: Session,
    regex: str,
    filter_type: int,
    description: str | None,
    replacement: str,
    user_id: int,
) -> FilterRow:
    added = PromptFilter(
        id=str(uuid.uuid4()),
        regex=regex,
        filter_type=filter_type,
        description=description,
        replacement=replacement,
        user_id=user_id,
    )
    session.add(added)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise FilterExists(regex) from None
    return _row(session, added)


def change_filter(
    session: Session, filter_id: str, changes: dict[str, object], user_id: int
) -> FilterRow | None:
    found = session.get(PromptFilter, filter_id)
    if found is None:
        return None
    for name, value in changes.items():
        setattr(found, name, value)
    found.user_id = user_id
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise FilterExists(str(changes.get("regex", found.regex))) from None
    return _row(session, found)


def delete_filter(session: Session, filter_id: str) -> bool:
    found = session.get(PromptFilter, filter_id)
    if found is None:
        return False
    session.delete(found)
    session.commit()
    return True
