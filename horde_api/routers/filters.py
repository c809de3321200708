"""Prompt filters, the public horde's /v2/filters: moderators add, list, change, delete and try
them. Each change reloads this process's compiled filters at once; other processes pick it up
within `HORDE_FILTER_REFRESH_SECONDS`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from horde_api.db.filters import (
    FilterExists,
    FilterRow,
    add_filter,
    change_filter,
    delete_filter,
    get_filter,
    list_filters,
)
from horde_api.deps import ContextDep, ModeratorDep, SessionDep
from horde_api.errors import BadRequest, NotFound
from horde_api.openapi_replies import error_replies
from horde_api.prompt_filters import regex_problem
from horde_protocol import (
    AddFilterInput,
    FilterDetails,
    FilterPromptSuspicion,
    FilterRegex,
    PatchFilterInput,
    TestPromptInput,
)
from horde_protocol.filters import MAX_FILTER_TYPE, MIN_FILTER_TYPE

router = APIRouter(prefix="/api/v2/filters", tags=["filters"])

FilterId = Annotated[str, Path(description="the filter's id", max_length=64)]
FilterTypeQuery = Annotated[
    int | None, Query(ge=MIN_FILTER_TYPE, le=MAX_FILTER_TYPE, description="only this type")
]
_MODERATOR_ERRORS = error_replies(400, 401, 403, 503)


def _details(row: FilterRow) -> FilterDetails:
    return FilterDetails(
        id=row.id,
        regex=row.regex,
        filter_type=row.filter_type,
        description=row.description,
        replacement=row.replacement,
        user=row.username,
    )


def _checked_regex(regex: str) -> str:
    problem = regex_problem(regex)
    if problem is not None:
        raise BadRequest(f"regex {regex!r}: {problem}")
    return regex


@router.get(
    "",
    response_model=list[FilterDetails],
    responses=_MODERATOR_ERRORS,
    summary="The prompt filters (moderators)",
)
def filters(
    _: ModeratorDep,
    session: SessionDep,
    filter_type: FilterTypeQuery = None,
    contains: Annotated[str | None, Query(max_length=1000)] = None,
) -> list[FilterDetails]:
    return [_details(row) for row in list_filters(session, filter_type, contains)]


@router.put(
    "",
    status_code=201,
    response_model=FilterDetails,
    responses=_MODERATOR_ERRORS,
    summary="Add a prompt filter (moderators)",
)
def add(
    body: AddFilterInput, moderator: ModeratorDep, ctx: ContextDep, session: SessionDep
) -> FilterDetails:
    assert moderator.user_id is not None
    try:
        row = add_filter(
            session,
            _checked_regex(body.regex),
            body.filter_type,
            body.description,
            body.replacement,
            moderator.user_id,
        )
    except FilterExists:
        raise BadRequest(
            f"A filter of type {body.filter_type} with this regex exists already"
        ) from None
    ctx.filters.reload()
    return _details(row)


@router.post(
    "",
    response_model=FilterPromptSuspicion,
    responses=_MODERATOR_ERRORS,
    summary="How suspicious the filters find a prompt (moderators)",
)
async def test_prompt(
    body: TestPromptInput, _: ModeratorDep, ctx: ContextDep
) -> FilterPromptSuspicion:
    found = ctx.filters.filters.check(body.prompt, nsfw=True, only_type=body.filter_type)
    return FilterPromptSuspicion(suspicion=found.suspicion, matches=found.matches)


@router.get(
    "/regex",
    response_model=list[FilterRegex],
    responses=_MODERATOR_ERRORS,
    summary="Each filter type's filters as one regex (moderators)",
)
def combined(
    _: ModeratorDep, session: SessionDep, filter_type: FilterTypeQuery = None
) -> list[FilterRegex]:
    by_type: dict[int, list[str]] = {}
    for row in list_filters(session, filter_type):
        by_type.setdefault(row.filter_type, []).append(row.regex)
    return [
        FilterRegex(filter_type=kind, regex="|".join(regexes))
        for kind, regexes in sorted(by_type.items())
    ]


@router.get(
    "/{filter_id}",
    response_model=FilterDetails,
    responses=error_replies(400, 401, 403, 404, 503),
    summary="One prompt filter (moderators)",
)
def one(filter_id: FilterId, _: ModeratorDep, session: SessionDep) -> FilterDetails:
    row = get_filter(session, filter_id)
    if row is None:
        raise NotFound(f"No filter with id {filter_id!r}")
    return _details(row)


@router.patch(
    "/{filter_id}",
    response_model=FilterDetails,
    responses=error_replies(400, 401, 403, 404, 503),
    summary="Change a prompt filter (moderators)",
)
def change(
    filter_id: FilterId,
    body: PatchFilterInput,
    moderator: ModeratorDep,
    ctx: ContextDep,
    session: SessionDep,
) -> FilterDetails:
    assert moderator.user_id is not None
    changes = body.model_dump(exclude_unset=True)
    if not changes:
        raise BadRequest("Nothing to change: send regex, filter_type, description or replacement")
    if changes.get("regex") is not None:
        _checked_regex(changes["regex"])
    for required in ("regex", "filter_type", "replacement"):
        if required in changes and changes[required] is None:
            raise BadRequest(f"{required} may be changed but not removed")
    try:
        row = change_filter(session, filter_id, changes, moderator.user_id)
    except FilterExists:
        raise BadRequest("A filter of this type with this regex exists already") from None
    if row is None:
        raise NotFound(f"No filter with id {filter_id!r}")
    ctx.filters.reload()
    return _details(row)


@router.delete(
    "/{filter_id}",
    responses=error_replies(400, 401, 403, 404, 503),
    summary="Delete a prompt filter (moderators)",
)
def delete(
    filter_id: FilterId, _: ModeratorDep, ctx: ContextDep, session: SessionDep
) -> dict[str, str]:
    if not delete_filter(session, filter_id):
        raise NotFound(f"No filter with id {filter_id!r}")
    ctx.filters.reload()
    return {"message": "OK"}
