"""Users: who am I (by key), and public details by id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from horde_api.db.models import User
from horde_api.db.users import workers_of
from horde_api.deps import PrincipalDep, SessionDep
from horde_api.errors import NotFound
from horde_api.openapi_replies import READ_BY_ID, error_replies
from horde_protocol import UserDetails

router = APIRouter(prefix="/api/v2", tags=["users"])


def _details(session: SessionDep, user: User) -> UserDetails:
    worker_ids = [w.id for w in workers_of(session, user.id)]
    return UserDetails(
        username=f"{user.username}#{user.id}",
        id=user.id,
        worker_ids=worker_ids,
        worker_count=len(worker_ids),
        concurrency=user.concurrency,
        trusted=user.trusted,
    )


@router.get(
    "/find_user",
    response_model=UserDetails,
    responses=error_replies(401, 404, 503),
    summary="The user owning the `apikey` header",
)
def find_user(principal: PrincipalDep, session: SessionDep) -> UserDetails:
    if principal.user_id is None:
        return UserDetails(username=principal.display_name, id=0, concurrency=principal.concurrency)
    user = session.get(User, principal.user_id)
    if user is None:
        raise NotFound("The user of this key no longer exists")
    return _details(session, user)


@router.get(
    "/users/{user_id}",
    response_model=UserDetails,
    responses=error_replies(*READ_BY_ID),
    summary="Public details of a user",
)
def get_user(user_id: Annotated[int, Path(ge=0, le=2**31 - 1)], session: SessionDep) -> UserDetails:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user with id {user_id}")
    return _details(session, user)
