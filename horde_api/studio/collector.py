"""Copying finished requests into their libraries, and the sweeper thread that does it.

A kept request is `pending` until the horde finishes it; then its images (and its source image)
are copied from the request's results into the result store under ids of their own, so the
horde's short retention of request results never takes them. Reading a library collects its own
pending requests first; the sweeper collects everyone's, so nothing is lost when the browser that
asked is closed. Several API processes may collect the same request at once: the image's unique
generation id lets one win, and the loser deletes the copies it wrote.
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
import threading
import time
import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from horde_api.context import HordeContext
from horde_api.queue.requests import RequestState, generation_records, view_request
from horde_api.studio import library
from horde_api.studio.models import LibraryImage, LibraryRequest, LibraryState
from horde_api.studio.settings import StudioSettings
from horde_protocol import GenerationState

log = logging.getLogger(__name__)
FULL_PASS_SECONDS = 60.0
FULL_PASS_LIMIT = 500
FINISHED_OVERLAP_SECONDS = 30.0

_FINAL_STATES = {
    RequestState.DONE: LibraryState.DONE,
    RequestState.CANCELLED: LibraryState.CANCELLED,
    RequestState.FAULTED: LibraryState.FAULTED,
    RequestState.EXPIRED: LibraryState.EXPIRED,
}
_KEPT_GENERATIONS = {GenerationState.OK.value, GenerationState.CENSORED.value}


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _first_start(ctx: HordeContext, generation_ids: list[str]) -> float | None:
    """When the first image of the request was handed to a worker (its lease's start)."""
    if not generation_ids:
        return None
    with ctx.redis.pipeline(transaction=False) as pipe:
        for generation_id in generation_ids:
            pipe.hget(ctx.keys.lease(generation_id), "started")
        starts = [float(_text(s)) for s in pipe.execute() if s]
    return min(starts) if starts else None


def _copy_source(ctx: HordeContext, request_id: str, written: list[str]) -> str | None:
    raw = ctx.redis.hget(ctx.keys.request_source(request_id), "image")
    if not raw:
        return None
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return None
    ref = ctx.store.put(str(uuid.uuid4()), data, ctx.clock())
    written.append(ref)
    return ref


def collect(ctx: HordeContext, session: Session, row: LibraryRequest) -> bool:
    """Copy `row`'s request into the library if the horde finished it; True when it did."""
    if row.state != LibraryState.PENDING.value:
        return False
    view = view_request(ctx.redis, ctx.keys, row.request_id, ctx.clock(), touch=False)
    if view is None:
        row.state = LibraryState.LOST.value
        session.commit()
        log.warning("library: request %s was gone before it could be kept", row.request_id)
        return True
    if not view.done:
        return False
    written: list[str] = []
    records = [
        r
        for r in generation_records(ctx.redis, ctx.keys, row.request_id)
        if r.get("ref") and r.get("state", "ok") in _KEPT_GENERATIONS
    ]
    try:
        for record in records:
            data = ctx.store.read(record["ref"])
            if data is None:
                continue
            image_id = str(uuid.uuid4())
            ref = ctx.store.put(image_id, data, ctx.clock())
            written.append(ref)
            row.images.append(
                LibraryImage(
                    id=image_id,
                    owner=row.owner,
                    generation_id=record["id"],
                    index=int(record.get("index", 0)),
                    seed=str(record.get("seed", ""))[:64],
                    model=str(record.get("model", ""))[:255],
                    worker_name=str(record.get("worker_name", ""))[:100],
                    state=record.get("state", "ok"),
                    ref=ref,
                    size_bytes=len(data),
                )
            )
        row.source_ref = _copy_source(ctx, row.request_id, written)
        row.started_at = _first_start(ctx, [r["id"] for r in records])
        row.finished_at = view.finished_at
        row.state = _FINAL_STATES.get(view.state, LibraryState.DONE).value
        session.commit()
    except IntegrityError:
        # Another process copied the same request first; its rows stand, our copies go.
        session.rollback()
        for ref in written:
            ctx.store.delete(ref)
        return False
    except Exception:
        session.rollback()
        for ref in written:
            ctx.store.delete(ref)
        raise
    return True


def collect_pending(
    ctx: HordeContext, session: Session, owner: str | None = None, limit: int = 50
) -> int:
    """Collect the pending requests of `owner` (of everyone when None), oldest first; returns
    how many finished."""
    rows = library.pending_rows(session, owner, limit)
    return sum(collect(ctx, session, row) for row in rows)


class LibrarySweeper:
    """Background thread of every API process: copies finished requests into their libraries and
    applies the retention.

    Each run asks the horde's index of finished requests (`RedisKeys.finished`) which requests
    finished since the last run, so a run costs one Redis call and one query however many
    requests are pending; once a minute a full pass looks at every pending request (those the
    horde forgot, runs that failed) and deletes what is past retention.
    """

    def __init__(self, ctx: HordeContext, settings: StudioSettings) -> None:
        self.ctx = ctx
        self.settings = settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._finished_since: float | None = None
        self._last_full_pass = -math.inf

    def _recently_finished(self, now: float) -> list[str]:
        since = self._finished_since
        # The next run reads an overlap back: a request finishing while we read (or on a
        # process whose clock is a little behind) is not missed.
        self._finished_since = now - FINISHED_OVERLAP_SECONDS
        if since is None:
            return []
        raw = self.ctx.redis.zrangebyscore(self.ctx.keys.finished, since, "+inf")
        return [_text(request_id) for request_id in raw]

    def run_once(self) -> int:
        """One sweep; returns how many requests were copied (or found lost)."""
        finished = self._recently_finished(self.ctx.clock())
        with self.ctx.sessions() as session:
            done = sum(
                collect(self.ctx, session, row)
                for row in library.pending_rows_of(session, finished)
            )
            if time.monotonic() - self._last_full_pass >= FULL_PASS_SECONDS:
                self._last_full_pass = time.monotonic()
                done += collect_pending(self.ctx, session, limit=FULL_PASS_LIMIT)
                library.purge_expired(session, self.ctx.store, self.settings)
                library.delete_pending(session, self.ctx.store)
        return done

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="library-sweeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.library_sweep_seconds):
            try:
                self.run_once()
            except Exception:
                log.warning("library sweep failed; retrying next interval", exc_info=True)
