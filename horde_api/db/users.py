"""Users, keys and workers in the database: the few queries the API and the CLI need."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from horde_api.auth.keys import NewKey, generate_key
from horde_api.db.models import ApiKey, User, Worker, utcnow


class UsernameTaken(Exception):
    pass


class WorkerNameTaken(Exception):
    """The worker name is registered to another user."""


@dataclass(frozen=True)
class KeyRow:
    key_id: str
    username: str
    user_id: int
    created_at: str
    revoked: bool


def create_user(
    session: Session,
    username: str,
    trusted: bool = False,
    concurrency: int = 30,
    moderator: bool = False,
) -> tuple[User, NewKey]:
    user = User(username=username, trusted=trusted, concurrency=concurrency, moderator=moderator)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise UsernameTaken(username) from None
    key = add_key(session, user)
    session.commit()
    return user, key


def find_user(session: Session, name_or_id: str) -> User | None:
    # ASCII digits only ("³".isdigit() is true), and no id longer than a BIGINT holds.
    if name_or_id.isascii() and name_or_id.isdigit() and len(name_or_id) <= 18:
        user = session.get(User, int(name_or_id))
        if user is not None:
            return user
    username = name_or_id.split("#", 1)[0]
    return session.scalar(select(User).where(User.username == username))


def add_key(session: Session, user: User) -> NewKey:
    key = generate_key()
    session.add(
        ApiKey(key_id=key.key_id, salt=key.salt, secret_hash=key.secret_hash, user_id=user.id)
    )
    session.flush()
    return key


def list_keys(session: Session, user: User | None = None) -> list[KeyRow]:
    query = select(ApiKey, User).join(User, ApiKey.user_id == User.id).order_by(ApiKey.id)
    if user is not None:
        query = query.where(ApiKey.user_id == user.id)
    return [
        KeyRow(
            key_id=key.key_id,
            username=owner.username,
            user_id=owner.id,
            created_at=key.created_at.isoformat(),
            revoked=key.revoked_at is not None,
        )
        for key, owner in session.execute(query).all()
    ]


def revoke_key(session: Session, key_id: str) -> bool:
    key = session.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
    if key is None:
        return False
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.commit()
    return True


def key_with_owner(session: Session, key_id: str) -> tuple[ApiKey, User] | None:
    row = session.execute(
        select(ApiKey, User).join(User, ApiKey.user_id == User.id).where(ApiKey.key_id == key_id)
    ).first()
    return (row[0], row[1]) if row else None


def register_worker(session: Session, name: str, owner_id: int) -> Worker:
    """The worker called `name`, registering it to `owner_id` on first use."""
    worker = session.scalar(select(Worker).where(Worker.name == name))
    if worker is None:
        worker = Worker(id=str(uuid.uuid4()), name=name, owner_id=owner_id)
        session.add(worker)
        try:
            session.commit()
        except IntegrityError:
            # Another process registered the same name at the same moment.
            session.rollback()
            worker = session.scalar(select(Worker).where(Worker.name == name))
            assert worker is not None
    if worker.owner_id != owner_id:
        raise WorkerNameTaken(name)
    return worker


def workers_of(session: Session, owner_id: int) -> list[Worker]:
    return list(session.scalars(select(Worker).where(Worker.owner_id == owner_id)))
