"""Users: who am I (by key), and public details by id."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Path

from horde_api.db.models import User, utcnow
from horde_api.db.users import workers_of
from horde_api.deps import ApiKeyHeader, ContextDep, PrincipalDep, SessionDep
from horde_api.errors import InvalidApiKey, NotFound
from horde_api.openapi_replies import READ_BY_ID, error_replies
from horde_api.queue.records import obsolete_counts, read_records
from horde_protocol import UserDetails, UserKudosDetails

router = APIRouter(prefix="/api/v2", tags=["users"])


def _details(ctx: ContextDep, session: SessionDep, user: User) -> UserDetails:
    worker_ids = [w.id for w in workers_of(session, user.id)]
    created = user.created_at
    if created.tzinfo is None:  # SQLite hands back naive datetimes
        created = created.replace(tzinfo=utcnow().tzinfo)
    records = read_records(ctx.redis, ctx.keys, user.id)
    return UserDetails(
        username=f"{user.username}#{user.id}",
        id=user.id,
        records=records,
        **obsolete_counts(records),
        concurrency=user.concurrency,
        trusted=user.trusted,
        moderator=user.moderator,
        kudos=user.kudos_cents / 100,
        kudos_details=UserKudosDetails(
            accumulated=user.accumulated_cents / 100,
            gifted=user.gifted_cents / 100,
            received=user.received_cents / 100,
            admin=user.admin_cents / 100,
        ),
        account_age=max(0, math.floor((utcnow() - created).total_seconds())),
        worker_ids=worker_ids,
        worker_count=len(worker_ids),
    )


@router.get(
    "/find_user",
    response_model=UserDetails,
    response_model_exclude_none=True,
    responses=error_replies(401, 404, 503),
    summary="The user owning the `apikey` header",
)
def find_user(
    principal: PrincipalDep, ctx: ContextDep, session: SessionDep, apikey: ApiKeyHeader = None
) -> UserDetails:
    if not apikey:
        raise InvalidApiKey("find_user needs your key in the `apikey` header")
    if principal.user_id is None:
        records = read_records(ctx.redis, ctx.keys, 0)
        return UserDetails(
            username=principal.display_name,
            id=0,
            records=records,
            **obsolete_counts(records),
            concurrency=principal.concurrency,
        )
    user = session.get(User, principal.user_id)
    if user is None:
        raise NotFound("The user of this key no longer exists")
    return _details(ctx, session, user)


@router.get(
    "/users/{user_id}",
    response_model=UserDetails,
    response_model_exclude_none=True,
    responses=error_replies(*READ_BY_ID),
    summary="Public details of a user",
)
def get_user(
    user_id: Annotated[int, Path(ge=0, le=2**31 - 1)], ctx: ContextDep, session: SessionDep
) -> UserDetails:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user with id {user_id}")
    return _details(ctx, session, user)
