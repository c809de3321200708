"""FastAPI dependencies shared by the routers.

The cheap ones are `async def`: FastAPI runs a sync dependency in its thread pool, and that hop
costs more than the work. Key lookups hit the database only on a cache miss (a key unseen for a
second), and then in the thread pool.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from horde_api.auth.principals import Principal
from horde_api.context import HordeContext
from horde_api.errors import AnonymousForbidden, Forbidden, InvalidApiKey


async def get_context(request: Request) -> HordeContext:
    return request.app.state.horde


ContextDep = Annotated[HordeContext, Depends(get_context)]


def get_session(ctx: ContextDep) -> Iterator[Session]:
    with ctx.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

ApiKeyHeader = Annotated[
    str | None,
    Header(alias="apikey", description="Your API key; 0000000000 is the anonymous key"),
]


async def _principal(ctx: HordeContext, apikey: str | None) -> Principal:
    """Cached or anonymous callers are answered here; a key not seen for a moment is looked up
    in the database in the thread pool, never on the event loop."""
    known = ctx.verifier.known(apikey)
    if known is not None:
        return known
    return await run_in_threadpool(ctx.verifier.verify, apikey)


async def get_principal(ctx: ContextDep, apikey: ApiKeyHeader = None) -> Principal:
    return await _principal(ctx, apikey)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_registered_principal(ctx: ContextDep, apikey: ApiKeyHeader = None) -> Principal:
    if not apikey:
        raise InvalidApiKey("This endpoint needs an API key in the `apikey` header")
    principal = await _principal(ctx, apikey)
    if principal.anonymous:
        raise AnonymousForbidden("The anonymous key may not do this; ask an operator for a key")
    return principal


RegisteredPrincipalDep = Annotated[Principal, Depends(get_registered_principal)]


async def get_moderator(ctx: ContextDep, apikey: ApiKeyHeader = None) -> Principal:
    principal = await get_registered_principal(ctx, apikey)
    if not principal.moderator:
        raise Forbidden("Only a moderator may do this (horde-api user moderator NAME)")
    return principal


ModeratorDep = Annotated[Principal, Depends(get_moderator)]


async def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


ClientIpDep = Annotated[str, Depends(client_ip)]


async def public_base_url(request: Request, ctx: ContextDep) -> str:
    """Base URL (no /api/v2) for links we hand out."""
    if ctx.settings.public_url:
        return ctx.settings.public_url.rstrip("/")
    return str(request.base_url).rstrip("/")


BaseUrlDep = Annotated[str, Depends(public_base_url)]
