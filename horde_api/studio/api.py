"""`/api/v2/library/...` (our extension): each user's library of everything they made.

Every route answers for one library only, the caller's (`owners.py`): an id of another library
is answered 404, exactly as an id that does not exist. Handlers are plain `def` (FastAPI runs
them in its thread pool): they query the database and copy files.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from horde_api.deps import ClientIpDep, ContextDep, RegisteredPrincipalDep, SessionDep
from horde_api.errors import BadRequest, Forbidden, NotFound, WrongCredentials
from horde_api.openapi_replies import error_replies
from horde_api.queue.descriptors import Kind
from horde_api.queue.requests import view_request
from horde_api.studio import library
from horde_api.studio.collector import collect, collect_pending
from horde_api.studio.owners import OwnerDep
from horde_api.studio.schemas import (
    API,
    DeletedReply,
    FetchSourceBody,
    KeepBody,
    LibraryPage,
    LibraryRequestReply,
    LibrarySummary,
    request_reply,
)
from horde_api.studio.state import StudioState
from horde_api.studio.url_fetch import SourceFetchError
from horde_protocol.ids import canonical_id

router = APIRouter(prefix=API, tags=["library (extension)"])

Listing = Literal["all", "pending", "kept"]
RequestId = Annotated[str, Path(description="the request's id from /generate/async", max_length=64)]
ImageId = Annotated[str, Path(description="a library image id", max_length=64)]
_ERRORS = error_replies(400, 401, 404, 503)


async def get_studio(request: Request) -> StudioState:
    return request.app.state.studio


StudioDep = Annotated[StudioState, Depends(get_studio)]


def _id_or_404(text: str, what: str) -> str:
    canonical = canonical_id(text)
    if canonical is None:
        raise NotFound(f"No {what} {text!r} in your library")
    return canonical


def _media_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    return "image/webp"


def _image_response(data: bytes | None, what: str) -> Response:
    if data is None:
        raise NotFound(f"The file of {what} is missing from the result store")
    return Response(
        data, media_type=_media_type(data), headers={"Cache-Control": "private, max-age=86400"}
    )


@router.get(
    "",
    response_model=LibrarySummary,
    responses=error_replies(400, 401, 503),
    summary="Extension: whose library this is, how full it is, how long it keeps",
)
def summary(
    ctx: ContextDep, session: SessionDep, owner: OwnerDep, studio: StudioDep
) -> LibrarySummary:
    collect_pending(ctx, session, owner.key)
    settings = studio.settings
    use = library.usage(session, owner.key, library.max_images(settings, owner.anonymous))
    return LibrarySummary(
        owner=owner.label,
        anonymous=owner.anonymous,
        images=use.images,
        pending_images=use.pending_images,
        max_images=use.limit,
        retention_days=settings.library_anonymous_retention_days
        if owner.anonymous
        else settings.library_retention_days,
    )


@router.get(
    "/requests",
    response_model=LibraryPage,
    responses=error_replies(400, 401, 503),
    summary="Extension: the library's requests with their images, newest first",
)
def list_requests(
    ctx: ContextDep,
    session: SessionDep,
    owner: OwnerDep,
    state: Annotated[
        Listing, Query(description="pending: not finished yet (the queue); kept: finished")
    ] = "all",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> LibraryPage:
    collect_pending(ctx, session, owner.key)
    states = None
    if state == "pending":
        states = [library.LibraryState.PENDING.value]
    elif state == "kept":
        states = [s.value for s in library.LibraryState if s != library.LibraryState.PENDING]
    rows, total = library.list_requests(session, owner.key, states, limit, offset)
    return LibraryPage(total=total, offset=offset, requests=[request_reply(r) for r in rows])


@router.post(
    "/requests",
    response_model=LibraryRequestReply,
    responses=error_replies(400, 401, 403, 404, 413, 503),
    summary="Extension: keep a request you made in your library (its images are copied in"
    " when it finishes)",
)
def keep(
    body: KeepBody,
    ctx: ContextDep,
    session: SessionDep,
    owner: OwnerDep,
    studio: StudioDep,
    ip: ClientIpDep,
) -> LibraryRequestReply:
    request_id = canonical_id(body.id)
    view = (
        view_request(ctx.redis, ctx.keys, request_id, ctx.clock(), touch=False)
        if request_id
        else None
    )
    if view is None or request_id is None:
        raise NotFound(f"No request with id {body.id!r} (unknown, or its results expired)")
    principal = owner.principal
    made_by = f"anon:{ip}" if principal.anonymous else str(principal.user_id)
    if view.owner != made_by:
        raise WrongCredentials(
            "This request was made by another user (or, anonymously, from another address);"
            " only its maker can keep it"
        )
    spec = view.spec
    settings = {
        "prompt": spec.get("prompt", ""),
        "params": spec.get("params", {}),
        "models": spec.get("models", []),
        "source_processing": spec.get("source_processing"),
        "source": spec.get("kind", Kind.TXT2IMG) != Kind.TXT2IMG,
    }
    source = body.source.model_dump(mode="json") if body.source else None
    limit = library.max_images(studio.settings, owner.anonymous)
    try:
        row = library.keep_request(
            session, owner.key, request_id, view.n, settings, source, view.created, limit
        )
    except library.LibraryFull as full:
        raise Forbidden(
            f"Your library is full: {full.kept} of {full.limit} images kept or coming, and this"
            f" request makes {full.adding}; delete some images from the library first"
        ) from None
    except library.AlreadyKept:
        raise WrongCredentials("This request is already kept in another library") from None
    collect(ctx, session, row)
    return request_reply(row)


@router.get(
    "/requests/{request_id}",
    response_model=LibraryRequestReply,
    responses=_ERRORS,
    summary="Extension: one kept request with its images",
)
def get_request(
    request_id: RequestId, ctx: ContextDep, session: SessionDep, owner: OwnerDep
) -> LibraryRequestReply:
    row = library.find_request(session, owner.key, _id_or_404(request_id, "request"))
    if row is None:
        raise NotFound(f"No request {request_id!r} in your library")
    collect(ctx, session, row)
    return request_reply(row)


@router.delete(
    "/requests/{request_id}",
    response_model=DeletedReply,
    responses=_ERRORS,
    summary="Extension: forget a kept request and delete its images",
)
def delete_request(
    request_id: RequestId, ctx: ContextDep, session: SessionDep, owner: OwnerDep
) -> DeletedReply:
    row = library.find_request(session, owner.key, _id_or_404(request_id, "request"))
    if row is None:
        raise NotFound(f"No request {request_id!r} in your library")
    return DeletedReply(deleted_images=library.delete_request(session, ctx.store, row))


@router.get(
    "/requests/{request_id}/source",
    response_class=Response,
    responses={200: {"content": {"image/webp": {}, "image/png": {}}}, **_ERRORS},
    summary="Extension: the source image a kept request was made from",
)
def request_source(
    request_id: RequestId, ctx: ContextDep, session: SessionDep, owner: OwnerDep
) -> Response:
    row = library.find_request(session, owner.key, _id_or_404(request_id, "request"))
    if row is None or not row.source_ref:
        raise NotFound(f"No source image of request {request_id!r} in your library")
    return _image_response(ctx.store.read(row.source_ref), f"request {request_id}'s source")


@router.get(
    "/images/{image_id}.webp",
    response_class=Response,
    responses={200: {"content": {"image/webp": {}}}, **_ERRORS},
    summary="Extension: one library image",
)
def image(image_id: ImageId, ctx: ContextDep, session: SessionDep, owner: OwnerDep) -> Response:
    found = library.find_image(session, owner.key, _id_or_404(image_id, "image"))
    if found is None:
        raise NotFound(f"No image {image_id!r} in your library")
    return _image_response(ctx.store.read(found.ref), f"image {image_id}")


@router.delete(
    "/images/{image_id}",
    response_model=DeletedReply,
    responses=_ERRORS,
    summary="Extension: delete one library image",
)
def delete_image(
    image_id: ImageId, ctx: ContextDep, session: SessionDep, owner: OwnerDep
) -> DeletedReply:
    found = library.find_image(session, owner.key, _id_or_404(image_id, "image"))
    if found is None:
        raise NotFound(f"No image {image_id!r} in your library")
    library.delete_image(session, ctx.store, found)
    return DeletedReply(deleted_images=1)


@router.post(
    "/fetch-source",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}},
        **error_replies(400, 401, 403, 413, 503),
    },
    summary="Extension: fetch an image from a public http(s) URL to use as a source",
)
async def fetch_source(
    body: FetchSourceBody, principal: RegisteredPrincipalDep, studio: StudioDep
) -> Response:
    try:
        fetched = await run_in_threadpool(studio.fetcher.fetch, body.url)
    except SourceFetchError as exc:
        raise BadRequest(f"Cannot use {body.url!r} as a source: {exc}") from None
    return Response(
        fetched.data, media_type=fetched.media_type, headers={"Cache-Control": "no-store"}
    )
