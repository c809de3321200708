"""The web studio: pages at `/` and each user's library at `/api/v2/library` (docs/web.md).

`install_studio(app, ctx)` adds both to the horde's app; the pages talk to the horde through its
public API like any other client, and to the library through its own endpoints.
"""

from __future__ import annotations

from fastapi import FastAPI

from horde_api.context import HordeContext
from horde_api.studio import api, pages
from horde_api.studio.collector import LibrarySweeper
from horde_api.studio.settings import StudioSettings
from horde_api.studio.state import StudioState
from horde_api.studio.url_fetch import SourceFetcher


def install_studio(
    app: FastAPI, ctx: HordeContext, settings: StudioSettings | None = None
) -> StudioState:
    settings = settings or StudioSettings()
    state = StudioState(
        settings=settings,
        sweeper=LibrarySweeper(ctx, settings),
        fetcher=SourceFetcher(
            timeout_seconds=settings.source_fetch_timeout_seconds,
            max_bytes=min(settings.source_fetch_max_bytes, ctx.settings.max_source_bytes),
            max_pixels=ctx.settings.max_source_pixels,
        ),
    )
    app.state.studio = state
    app.include_router(api.router)
    if settings.studio_enabled:
        pages.install(app)
    return state
