"""Balances in the database: every movement is a ledger row written in the same transaction as
the balances it changes, under the unique id of the event it settles, so an event applied twice
(a settlement retried after a crash) changes nothing, and concurrent changes never lose one:
each balance moves by one `UPDATE ... SET kudos = kudos + x`."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from horde_api.db.models import KudosEntry, User, Worker, utcnow


class UserKudos(str, Enum):
    """The part of a user's `kudos_details` a movement counts in (the public horde's names)."""

    ACCUMULATED = "accumulated"  # images requested (negative) and generated (positive)
    GIFTED = "gifted"  # transfers out (negative)
    RECEIVED = "received"  # transfers in
    ADMIN = "admin"  # an operator's adjustment


class WorkerKudos(str, Enum):
    """The part of a worker's `kudos_details` a reward counts in."""

    GENERATED = "generated"
    UPTIME = "uptime"


_USER_COLUMN = {
    UserKudos.ACCUMULATED: User.accumulated_cents,
    UserKudos.GIFTED: User.gifted_cents,
    UserKudos.RECEIVED: User.received_cents,
    UserKudos.ADMIN: User.admin_cents,
}
_WORKER_COLUMN = {
    WorkerKudos.GENERATED: Worker.generated_cents,
    WorkerKudos.UPTIME: Worker.uptime_cents,
}


def to_cents(kudos: float) -> int:
    return round(kudos * 100)


@dataclass(frozen=True)
class KudosEvent:
    """One movement to settle: `cents` (signed) to `user_id`'s balance, counted in `kind`, and
    in `worker_kind` of `worker_id` when a worker earned it."""

    event_id: str
    user_id: int
    cents: int
    kind: UserKudos
    worker_id: str | None = None
    worker_kind: WorkerKudos | None = None
    request_id: str | None = None
    note: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> KudosEvent:
        fields = json.loads(text)
        worker_kind = fields.get("worker_kind")
        return cls(
            event_id=str(fields["event_id"]),
            user_id=int(fields["user_id"]),
            cents=int(fields["cents"]),
            kind=UserKudos(fields["kind"]),
            worker_id=fields.get("worker_id") or None,
            worker_kind=WorkerKudos(worker_kind) if worker_kind else None,
            request_id=fields.get("request_id") or None,
            note=fields.get("note") or None,
        )


_ENTRY_COLUMNS = (
    "event_id",
    "user_id",
    "cents",
    "kind",
    "worker_id",
    "request_id",
    "note",
    "created_at",
)
# On PostgreSQL the rows go as one array per column: a statement of fixed text and eight
# parameters. A multi-row VALUES statement would be new text for each batch size, and psycopg
# parses every statement of more than 50 parameters afresh (a tenth of the API's CPU under load).
_PG_INSERT_NEW_ENTRIES = text(
    f"INSERT INTO {KudosEntry.__tablename__} ({', '.join(_ENTRY_COLUMNS)})"
    " SELECT * FROM unnest(CAST(:event_id AS varchar[]), CAST(:user_id AS integer[]),"
    " CAST(:cents AS bigint[]), CAST(:kind AS varchar[]), CAST(:worker_id AS varchar[]),"
    " CAST(:request_id AS varchar[]), CAST(:note AS text[]), CAST(:created_at AS timestamptz[]))"
    " ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)


def _insert_new_entries(session: Session, rows: list[dict[str, Any]]) -> list[str]:
    """Insert the ledger rows whose event_id is not there yet; the event ids inserted."""
    if session.get_bind().dialect.name == "postgresql":
        columns = {name: [row[name] for row in rows] for name in _ENTRY_COLUMNS}
        return list(session.execute(_PG_INSERT_NEW_ENTRIES, columns).scalars())
    # SQLite (embedded mode): one statement compiled once (cached) and sent as multi-row
    # batches (SQLAlchemy's "insertmanyvalues").
    table = KudosEntry.__table__
    statement = (
        sqlite.insert(table)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(table.c.event_id)
    )
    return list(session.execute(statement, rows).scalars())


def _add_sums(
    session: Session, model: type[User] | type[Worker], sums: dict[Any, dict[str, int]]
) -> None:
    """One `UPDATE … SET column = column + sum, …` per row; in id order, so two settlers (or a
    transfer) lock rows in one order."""
    for row_id in sorted(sums):
        columns = {
            getattr(model, name): getattr(model, name) + cents
            for name, cents in sums[row_id].items()
        }
        session.execute(update(model).where(model.id == row_id).values(columns))


def apply_events(session: Session, events: list[KudosEvent]) -> int:
    """Apply the events not applied before (the caller commits); how many were new. Events of
    users that no longer exist are dropped.

    A batch costs a fixed handful of statements, not a few per event: one SELECT of the users
    that exist, one INSERT of the ledger rows (those already there are skipped, and RETURNING
    names the new ones), then one UPDATE per user and per worker with the sums of
    their new events. The settlement of a busy horde is a batch of hundreds of events a second.
    """
    unique: dict[str, KudosEvent] = {}
    for event in events:
        unique.setdefault(event.event_id, event)
    if not unique:
        return 0
    wanted = {event.user_id for event in unique.values()}
    existing = set(session.scalars(select(User.id).where(User.id.in_(wanted))))
    rows = [
        {
            "event_id": event.event_id,
            "user_id": event.user_id,
            "cents": event.cents,
            "kind": event.kind.value,
            "worker_id": event.worker_id,
            "request_id": event.request_id,
            "note": event.note,
            "created_at": utcnow(),
        }
        for event in unique.values()
        if event.user_id in existing
    ]
    if not rows:
        return 0
    new = [unique[event_id] for event_id in _insert_new_entries(session, rows)]
    users: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    workers: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for event in new:
        users[event.user_id][User.kudos_cents.key] += event.cents
        users[event.user_id][_USER_COLUMN[event.kind].key] += event.cents
        if event.worker_id and event.worker_kind is not None:
            workers[event.worker_id][_WORKER_COLUMN[event.worker_kind].key] += event.cents
    _add_sums(session, User, users)
    _add_sums(session, Worker, workers)
    return len(new)


class NotEnoughKudos(Exception):
    pass


def transfer(
    session: Session, source_id: int, target_id: int, cents: int, transfer_id: str
) -> None:
    """Move `cents` from one balance to another in one transaction; the source never goes below
    zero by a transfer (a concurrent one cannot slip past the check: it is part of the UPDATE)."""
    taken = session.execute(
        update(User)
        .where(User.id == source_id, User.kudos_cents >= cents)
        .values(kudos_cents=User.kudos_cents - cents, gifted_cents=User.gifted_cents - cents)
    )
    if taken.rowcount != 1:
        session.rollback()
        raise NotEnoughKudos
    session.execute(
        update(User)
        .where(User.id == target_id)
        .values(kudos_cents=User.kudos_cents + cents, received_cents=User.received_cents + cents)
    )
    session.add_all(
        [
            KudosEntry(
                event_id=f"transfer:{transfer_id}:out",
                user_id=source_id,
                cents=-cents,
                kind=UserKudos.GIFTED.value,
                note=f"to user {target_id}",
            ),
            KudosEntry(
                event_id=f"transfer:{transfer_id}:in",
                user_id=target_id,
                cents=cents,
                kind=UserKudos.RECEIVED.value,
                note=f"from user {source_id}",
            ),
        ]
    )
    session.commit()


def recent_entries(session: Session, user_id: int, limit: int = 20) -> list[KudosEntry]:
    return list(
        session.scalars(
            select(KudosEntry)
            .where(KudosEntry.user_id == user_id)
            .order_by(KudosEntry.id.desc())
            .limit(limit)
        )
    )
