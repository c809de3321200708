"""The app factory: `create_app(settings)` wires settings, stores, queue and routers."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from horde_api import __version__
from horde_api.auth.principals import KeyVerifier
from horde_api.context import HordeContext
from horde_api.db.engine import make_engine, make_session_factory
from horde_api.db.migrate import upgrade
from horde_api.errors import install_error_handlers
from horde_api.kudos.settlement import settle
from horde_api.middleware import BodySizeLimit
from horde_api.openapi_replies import install_honest_openapi
from horde_api.prompt_filters import FilterCache
from horde_api.queue.connection import connect
from horde_api.queue.embedded_snapshot import load_snapshot, save_snapshot
from horde_api.queue.enqueue import QueueWriter
from horde_api.queue.janitor import Janitor
from horde_api.queue.keys import RedisKeys
from horde_api.queue.notifier import RequestNotifier
from horde_api.queue.pop import LeasePolicy
from horde_api.queue.workers import LiveWorkersCache, live_workers
from horde_api.routers import filters, generate, kudos, status, users, worker_jobs, workers
from horde_api.settings import HordeSettings
from horde_api.store.results import FilesystemResultStore, ResultStore
from horde_api.store.s3 import S3ResultStore
from horde_api.studio import install_studio

log = logging.getLogger(__name__)
EMBEDDED_SNAPSHOT_NAME = "embedded-redis.snapshot"


def _every(seconds: float, action: Callable[[], object]) -> Callable[[], None]:
    """Run `action` when `seconds` passed since it last ran, and never more than 5% of the
    time: a slow run (a big store) spaces out the next ones."""
    next_run = [time.monotonic() + seconds]

    def maybe_run() -> None:
        started = time.monotonic()
        if started >= next_run[0]:
            action()
            took = time.monotonic() - started
            next_run[0] = time.monotonic() + max(seconds, 20 * took)

    return maybe_run


def build_result_store(settings: HordeSettings) -> ResultStore:
    """The bucket when HORDE_RESULTS_S3_BUCKET names one, else files under the data dir."""
    if settings.results_s3_bucket:
        return S3ResultStore.from_settings(settings)
    return FilesystemResultStore(settings.data_dir / "results")


def build_context(settings: HordeSettings, clock: Callable[[], float] = time.time) -> HordeContext:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url())
    upgrade(engine)
    sessions = make_session_factory(engine)
    connection = connect(settings)
    redis = connection.redis
    keys = RedisKeys(settings.redis_prefix)
    store = build_result_store(settings)
    snapshot = settings.data_dir / EMBEDDED_SNAPSHOT_NAME
    filter_cache = FilterCache(sessions)
    filter_cache.reload()
    periodic = [
        _every(settings.filter_refresh_seconds, filter_cache.reload),
        # Every janitor pass: charges and rewards reach the balances within about a second.
        lambda: settle(redis, keys, sessions),
    ]
    server = connection.embedded_server
    if server is not None:
        load_snapshot(redis, snapshot)
        periodic.append(
            _every(settings.embedded_snapshot_seconds, lambda: save_snapshot(redis, snapshot))
        )

    def after_janitor() -> None:
        for action in periodic:
            action()

    return HordeContext(
        settings=settings,
        redis=redis,
        keys=keys,
        engine=engine,
        sessions=sessions,
        verifier=KeyVerifier(
            sessions, settings.anonymous_concurrency, cache_seconds=settings.key_cache_seconds
        ),
        writer=QueueWriter(redis, keys),
        store=store,
        notifier=RequestNotifier(redis, keys),
        janitor=Janitor(redis, keys, store, settings, clock=clock, after_run=after_janitor),
        live_workers=LiveWorkersCache(
            lambda: live_workers(redis, keys, clock(), settings.worker_offline_seconds)
        ),
        lease_policy=LeasePolicy(
            ttl_min_seconds=settings.lease_ttl_min_seconds,
            ttl_override_seconds=settings.lease_ttl_override_seconds,
            keep_seconds=settings.request_expiry_seconds + settings.result_retention_seconds,
            lookahead=settings.pop_lookahead,
            offline_seconds=settings.worker_offline_seconds,
        ),
        filters=filter_cache,
        clock=clock,
        embedded_server=server,
    )


def create_app(
    settings: HordeSettings | None = None,
    *,
    clock: Callable[[], float] = time.time,
    run_janitor: bool = True,
) -> FastAPI:
    settings = settings or HordeSettings()
    ctx = build_context(settings, clock)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        ctx.notifier.start()
        if run_janitor:
            ctx.janitor.start()
            studio.sweeper.start()
        log.info(
            "horde API ready (%s Redis, database %s)",
            "embedded" if settings.embedded else "shared",
            ctx.engine.url.render_as_string(hide_password=True),
        )
        try:
            yield
        finally:
            studio.sweeper.stop()
            ctx.janitor.stop()
            ctx.notifier.stop()
            if ctx.embedded_server is not None:
                save_snapshot(ctx.redis, settings.data_dir / EMBEDDED_SNAPSHOT_NAME)
            ctx.engine.dispose()

    app = FastAPI(
        title="krita-horde API",
        version=__version__,
        description="AI Horde v2 image API subset, with progress, previews and long-poll.",
        lifespan=lifespan,
    )
    app.state.horde = ctx
    install_error_handlers(app)
    install_honest_openapi(app)
    for module in (generate, worker_jobs, status, workers, users, filters, kudos):
        app.include_router(module.router)
    # The web studio (pages at /, the library at /api/v2/library): docs/web.md.
    studio = install_studio(app, ctx)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.trusted_proxies:
        # The client's address and scheme from X-Forwarded-For/-Proto, only when the peer is one
        # of the operator's proxies: a header anyone else sets is never believed.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    return app
